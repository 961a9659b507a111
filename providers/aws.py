"""AWS adapter: VPC route tables through boto3's EC2 client.

AWS routes carry no tags, so ownership is structural (docs/architecture.md, "Ownership"): in a managed
table, created by `CreateRoute`, pointing at an instance or ENI or a blackhole. The planner adds the
cluster-CIDR rule; a delete of a route listed as not owned is refused here as well.
botocore's own retries are off: the executor owns pacing and retries, and two retry layers would
multiply each other's attempts against the account's shared throttling bucket.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from providers.diagnosis import failed, passed, quota_checks, warned
from providers.errors import (
    ConfigurationError,
    Fatal,
    InvalidProviderID,
    NotFound,
    OutsideNetwork,
    ProviderError,
    Throttled,
    Transient,
)
from providers.model import (
    CallObserver,
    Check,
    DiagnosisScope,
    Limits,
    Network,
    Outcome,
    Route,
    RouteResult,
    RouteState,
    Target,
    WriteGuard,
    no_guard,
    nothing_adoptable,
)
from providers.specs.aws import DEFAULT_ROUTES_PER_TABLE, LIMITS, AwsConfig

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_ec2.type_defs import RouteTypeDef

ROUTES_PER_TABLE_QUOTA_CODE = "L-93826ACB"

CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
LEGACY_CLUSTER_TAG = "KubernetesCluster"

_PROVIDER_ID = re.compile(r"aws:///(?:[a-z0-9-]+/)?(?P<instance>i-[0-9a-f]+)")
_THROTTLE_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
_TRANSIENT_CODES = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "ServerInternal"}
)
_DESCRIBE_INSTANCES_CHUNK = 200
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]

# Every EC2 / Service Quotas action this adapter can call; docs/aws.md's policy is tested against it.
ACTIONS = (
    "ec2:DescribeRouteTables",
    "ec2:DescribeInstances",
    "ec2:CreateRoute",
    "ec2:ReplaceRoute",
    "ec2:DeleteRoute",
    "ec2:ModifyInstanceAttribute",
    "servicequotas:GetServiceQuota",
)


def build(config: AwsConfig) -> AwsProvider:
    session = boto3.session.Session(region_name=config.region)
    boto_config = BotoConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=50,
    )
    endpoint = config.common.endpoint or None
    ec2 = session.client("ec2", endpoint_url=endpoint, config=boto_config)
    quotas = session.client("service-quotas", endpoint_url=endpoint, config=boto_config)
    sts = session.client("sts", endpoint_url=endpoint, config=boto_config)
    return AwsProvider(config, ec2, quotas, sts)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _status(err: ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_retryable(err: ClientError) -> bool:
    return _code(err) in _THROTTLE_CODES or _code(err) in _TRANSIENT_CODES or _status(err) >= 500


def _translate(err: Exception, what: str) -> ProviderError:
    """Whole-call failures (reads, discovery, setup) as typed provider errors."""
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return Fatal(f"{what}: no usable AWS credentials ({err}); see docs/aws.md for IRSA or a Secret")
    if isinstance(err, ParamValidationError | NoRegionError):
        return Fatal(f"{what}: {err}")
    if isinstance(err, BotoCoreError):
        return Transient(f"{what}: {err}")
    assert isinstance(err, ClientError)
    code, message = _code(err), err.response.get("Error", {}).get("Message", "")
    if code in _THROTTLE_CODES:
        return Throttled(f"{what}: {code}")
    if _is_retryable(err):
        return Transient(f"{what}: {code or _status(err)} {message}")
    if code.endswith(".NotFound"):
        return NotFound(f"{what}: {code}: {message}")
    return Fatal(f"{what}: {code}: {message}")


def _destination(route: RouteTypeDef) -> str | None:
    return route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")


class _Destination(TypedDict, total=False):
    DestinationCidrBlock: str
    DestinationIpv6CidrBlock: str


def _dest_args(destination: Network) -> _Destination:
    if destination.version == 4:
        return {"DestinationCidrBlock": str(destination)}
    return {"DestinationIpv6CidrBlock": str(destination)}


class AwsProvider:
    """One account/region; several route tables, every node route in every table."""

    name = "aws"

    def __init__(self, config: AwsConfig, ec2: EC2Client, quotas: Any, sts: Any) -> None:
        self._config = config
        self._ec2 = ec2
        self._quotas = quotas
        self._sts = sts
        """Only `routectl doctor` calls it (GetCallerIdentity needs no permission)."""
        self._tables: tuple[str, ...] | None = None
        self._vpcs: frozenset[str] = frozenset()
        """The VPCs of the managed route tables: a target instance must be in one of them."""
        self._write_guard: WriteGuard = no_guard
        self._lock = threading.Lock()
        quota = config.common.route_table_quota or self._quota_from_service_quotas()
        self._limits = dataclasses.replace(config.common.limits(LIMITS), routes_per_table=quota)

    def observe(self, observer: CallObserver) -> None:
        """Report every API call (name, HTTP status or error code, seconds) to `observer`."""
        started: dict[int, float] = {}

        def before(**kwargs: Any) -> None:
            started[threading.get_ident()] = time.monotonic()

        def after(http_response: Any = None, model: Any = None, parsed: Any = None, **_: Any) -> None:
            begun = started.pop(threading.get_ident(), time.monotonic())
            code = str(
                (parsed or {}).get("Error", {}).get("Code") or getattr(http_response, "status_code", "")
            )
            observer(model.name if model is not None else "unknown", code, time.monotonic() - begun)

        def failed(event_name: str = "", exception: BaseException | None = None, **_: Any) -> None:
            # No response at all (timeout, refused connection): botocore emits after-call-error instead.
            begun = started.pop(threading.get_ident(), time.monotonic())
            observer(event_name.rsplit(".", 1)[-1], type(exception).__name__, time.monotonic() - begun)

        for client in (self._ec2, self._quotas, self._sts):
            client.meta.events.register("before-send", before)
            client.meta.events.register("after-call", after)
            client.meta.events.register("after-call-error", failed)

    def guard_writes(self, guard: WriteGuard) -> None:
        self._write_guard = guard

    @property
    def limits(self) -> Limits:
        return self._limits

    # --- discovery -----------------------------------------------------------------------------

    def tables(self) -> Sequence[str]:
        with self._lock:
            if self._tables is None:
                self._tables = self._discover()
            return self._tables

    def _discover(self) -> tuple[str, ...]:
        explicit = self._config.route_table_ids
        if explicit:
            described = self._describe_tables(RouteTableIds=list(explicit))
            found = {t["RouteTableId"] for t in described}
            missing = sorted(set(explicit) - found)
            if missing:
                raise ConfigurationError(f"aws: route table(s) {', '.join(missing)} not found")
            self._vpcs = frozenset(t.get("VpcId", "") for t in described)
            return tuple(explicit)
        vpc = [{"Name": "vpc-id", "Values": [self._config.vpc_id]}] if self._config.vpc_id else []
        name = self._config.common.cluster_name
        described = [
            t
            for filters in (
                [{"Name": f"tag:{CLUSTER_TAG_PREFIX}{name}", "Values": ["owned", "shared"]}],
                [{"Name": f"tag:{LEGACY_CLUSTER_TAG}", "Values": [name]}],
            )
            for t in self._describe_tables(Filters=filters + vpc)
        ]
        tagged = {t["RouteTableId"] for t in described}
        self._vpcs = frozenset(t.get("VpcId", "") for t in described)
        if not tagged:
            where = f" in {self._config.vpc_id}" if self._config.vpc_id else ""
            raise ConfigurationError(
                f"aws: no route table{where} is tagged {CLUSTER_TAG_PREFIX}{name}=owned|shared "
                f"or {LEGACY_CLUSTER_TAG}={name}; tag the tables or pass --route-table-id"
            )
        return tuple(sorted(tagged))

    def _describe_tables(self, **kwargs: Any) -> list[Any]:
        try:
            pages = self._ec2.get_paginator("describe_route_tables").paginate(**kwargs)
            return [table for page in pages for table in page["RouteTables"]]
        except ClientError as err:
            if _code(err) == "InvalidRouteTableID.NotFound":
                raise ConfigurationError(f"aws: {err.response['Error'].get('Message', '')}") from None
            raise _translate(err, "DescribeRouteTables") from None
        except BotoCoreError as err:
            raise _translate(err, "DescribeRouteTables") from None

    def _quota_from_service_quotas(self) -> int:
        try:
            quota = self._quotas.get_service_quota(ServiceCode="vpc", QuotaCode=ROUTES_PER_TABLE_QUOTA_CODE)
            return int(quota["Quota"]["Value"])
        except (ClientError, BotoCoreError, KeyError, ValueError):
            # The policy may not grant servicequotas:GetServiceQuota; AWS's default is the safe guess.
            return DEFAULT_ROUTES_PER_TABLE

    # --- listing -------------------------------------------------------------------------------

    def list_routes(self, table: str) -> list[Route]:
        tables = self._describe_tables(RouteTableIds=[table])
        raw = [r for t in tables for r in t.get("Routes", []) if _destination(r)]
        alive = self._live_instances({r["InstanceId"] for r in raw if r.get("InstanceId")})
        return [self._route(r, alive) for r in raw]

    def _live_instances(self, ids: Iterable[str]) -> set[str]:
        """Instances that still exist: AWS marks routes to terminated instances blackhole, but not at
        once and not in every emulator, so the adapter checks itself."""
        return {i["InstanceId"] for i in self._instances(ids, _LIVE_STATES)}

    def _route(self, raw: RouteTypeDef, alive: set[str]) -> Route:
        destination = ipaddress.ip_network(_destination(raw) or "", strict=False)
        instance = raw.get("InstanceId")
        eni = raw.get("NetworkInterfaceId")
        other_hop = next(
            (
                raw[k]
                for k in (
                    "GatewayId",
                    "NatGatewayId",
                    "TransitGatewayId",
                    "VpcPeeringConnectionId",
                    "EgressOnlyInternetGatewayId",
                    "LocalGatewayId",
                    "CarrierGatewayId",
                    "CoreNetworkArn",
                )
                if raw.get(k)
            ),
            "",
        )
        blackhole = raw.get("State") == "blackhole" or (instance is not None and instance not in alive)
        owned = raw.get("Origin") == "CreateRoute" and not other_hop and bool(instance or eni or blackhole)
        return Route(
            destination=destination,
            target=Target(instance=instance) if instance and not blackhole else None,
            owned=owned,
            state=RouteState.BLACKHOLE if blackhole else RouteState.ACTIVE,
            next_hop=str(instance or eni or other_hop or "blackhole"),
        )

    # --- writes --------------------------------------------------------------------------------

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return [self._write("CreateRoute", table, r, self._create_one) for r in routes]

    def replace_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return [self._write("ReplaceRoute", table, r, self._replace_one) for r in routes]

    def delete_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return [self._write("DeleteRoute", table, r, self._delete_one) for r in routes]

    def adopt_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        """Nothing to adopt: EC2 routes carry no marks, ownership is structural (every instance route
        inside the cluster CIDRs of a managed table is owned already)."""
        return nothing_adoptable(self.name, routes)

    def _write(
        self, api: str, table: str, route: Route, call: Callable[[str, Route], RouteResult]
    ) -> RouteResult:
        try:
            return call(table, route)
        except ClientError as err:
            return self._failed(api, route, err)
        except BotoCoreError as err:
            # A timeout or broken connection: the write may have happened; every write here is
            # idempotent through RouteAlreadyExists / InvalidRoute.NotFound, so a retry is safe.
            # Client-side errors (no credentials, a malformed request) cannot succeed on retry.
            translated = _translate(err, api)
            outcome = Outcome.RETRY if isinstance(translated, Transient) else Outcome.FATAL
            return RouteResult(route, outcome, str(translated))
        except (Throttled, Transient) as err:
            # The listing behind RouteAlreadyExists failed: per-route outcomes are never raised.
            return RouteResult(route, Outcome.RETRY, f"{api}: {err}")
        except ProviderError as err:
            return RouteResult(route, Outcome.FATAL, f"{api}: {err}")

    def _failed(self, api: str, route: Route, err: ClientError) -> RouteResult:
        code = _code(err)
        message = f"{api}: {code}: {err.response.get('Error', {}).get('Message', '')}"
        if _is_retryable(err):
            return RouteResult(route, Outcome.RETRY, message, throttled=code in _THROTTLE_CODES)
        if code == "RouteLimitExceeded":
            return RouteResult(route, Outcome.QUOTA_EXCEEDED, message)
        if code == "InvalidInstanceID.NotFound":
            return RouteResult(route, Outcome.FATAL, message, target_gone=True)
        return RouteResult(route, Outcome.FATAL, message)

    def _create_one(self, table: str, route: Route, *, may_replace: bool = True) -> RouteResult:
        assert route.target is not None, "desired routes always have a target"
        try:
            self._write_guard()
            self._ec2.create_route(
                RouteTableId=table, InstanceId=route.target.instance, **_dest_args(route.destination)
            )
            return RouteResult(route, Outcome.OK)
        except ClientError as err:
            if _code(err) != "RouteAlreadyExists":
                raise
        existing = self._find(table, route.destination)
        if existing is None:
            return RouteResult(route, Outcome.RETRY, "CreateRoute: RouteAlreadyExists, but not listed yet")
        if existing.target is not None and existing.target.instance == route.target.instance:
            return RouteResult(route, Outcome.ALREADY_DONE)
        if not existing.owned:
            return RouteResult(
                route,
                Outcome.CONFLICT,
                f"CreateRoute: {route.destination} already routes to {existing.next_hop}",
            )
        if not may_replace:
            return RouteResult(route, Outcome.RETRY, "ReplaceRoute: the route changed while replacing it")
        return self._replace_one(table, route)

    def _replace_one(self, table: str, route: Route) -> RouteResult:
        assert route.target is not None, "desired routes always have a target"
        try:
            self._write_guard()
            self._ec2.replace_route(
                RouteTableId=table, InstanceId=route.target.instance, **_dest_args(route.destination)
            )
            return RouteResult(route, Outcome.OK)
        except ClientError as err:
            # The route vanished between list and replace: create it instead.
            if _code(err) in ("InvalidRoute.NotFound", "InvalidParameterValue"):
                return self._create_one(table, route, may_replace=False)
            raise

    def _delete_one(self, table: str, route: Route) -> RouteResult:
        if not route.owned:
            return RouteResult(
                route, Outcome.CONFLICT, "DeleteRoute: refusing a route this cluster does not own"
            )
        try:
            self._write_guard()
            self._ec2.delete_route(RouteTableId=table, **_dest_args(route.destination))
            return RouteResult(route, Outcome.OK)
        except ClientError as err:
            if _code(err) == "InvalidRoute.NotFound":
                return RouteResult(route, Outcome.ALREADY_DONE)
            raise

    def _find(self, table: str, destination: Network) -> Route | None:
        return next((r for r in self.list_routes(table) if r.destination == destination), None)

    # --- targets -------------------------------------------------------------------------------

    def target_for(self, provider_id: str) -> Target:
        match = _PROVIDER_ID.fullmatch(provider_id)
        if match is None:
            raise InvalidProviderID(
                f"providerID {provider_id!r} is not an AWS instance (aws:///<zone>/<instance-id>)"
            )
        # Instance ids are unique per region and listings report no zone: a Target carrying the zone
        # would never equal the listed one, and the planner would replace every route on every sync.
        return Target(instance=match["instance"])

    def prepare_target(self, target: Target) -> None:
        """The instance must be in a managed table's VPC (else `OutsideNetwork`, nothing changed); pod
        traffic is not addressed to the instance itself, so EC2 drops it unless the source/destination
        check is off. One DescribeInstances answers both, so a converged fleet costs one read each."""
        self.tables()  # discovers the managed tables and their VPCs, once
        managed = self._vpcs
        try:
            answer = self._ec2.describe_instances(InstanceIds=[target.instance])
            found = [i for res in answer["Reservations"] for i in res["Instances"]]
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"describe instance {target.instance}") from None
        if not found:
            raise NotFound(f"describe instance {target.instance}: InvalidInstanceID.NotFound")
        instance = found[0]
        if instance.get("VpcId", "") not in managed:
            raise OutsideNetwork(target.instance, instance.get("VpcId", ""), ", ".join(sorted(managed)))
        if instance.get("SourceDestCheck") is False:
            return
        try:
            self._write_guard()
            self._ec2.modify_instance_attribute(InstanceId=target.instance, SourceDestCheck={"Value": False})
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"disable source/destination check on {target.instance}") from None

    # --- doctor --------------------------------------------------------------------------------------

    def diagnose(self, scope: DiagnosisScope) -> list[Check]:
        """Identity, the managed tables, each write proven with DryRun, the nodes' subnets associated
        with a managed table, quota headroom per family, the source/destination check. Reads only."""
        checks = [self._identity()]
        try:
            tables = self.tables()
        except ProviderError as err:
            return [
                *checks,
                failed(self.name, "route-tables", str(err), "tag the tables or pass --route-table-id"),
            ]
        checks.append(
            passed(self.name, "route-tables", f"{', '.join(tables)} in {', '.join(sorted(self._vpcs))}")
        )
        instances = self._instances(t.instance for t in scope.targets)
        checks += self._dry_runs(tables[0], scope, instances)
        checks += self._associations(tables, instances)
        for table in tables:
            checks += quota_checks(
                self.name,
                table,
                self.list_routes(table),
                scope.cluster_cidrs,
                len(scope.targets),
                self._limits.routes_per_table,
                per_family=self._limits.quota_per_family,
            )
        return checks + [self._source_dest_check(i) for i in instances]

    def _identity(self) -> Check:
        try:
            arn = self._sts.get_caller_identity()["Arn"]
        except (ClientError, BotoCoreError) as err:
            fix = "give the pod AWS credentials (IRSA or a Secret, docs/aws.md)"
            return failed(
                self.name, "identity", f"STS GetCallerIdentity: {_translate(err, 'GetCallerIdentity')}", fix
            )
        return passed(self.name, "identity", f"calling as {arn}")

    def _instances(self, ids: Iterable[str], states: list[str] | None = None) -> list[Any]:
        """DescribeInstances of these ids (in any state, or only `states`), 200 ids per request."""
        wanted = sorted(set(ids))
        state: list[Any] = [{"Name": "instance-state-name", "Values": states}] if states else []
        found: list[Any] = []
        for start in range(0, len(wanted), _DESCRIBE_INSTANCES_CHUNK):
            chunk = wanted[start : start + _DESCRIBE_INSTANCES_CHUNK]
            try:
                pages = self._ec2.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "instance-id", "Values": chunk}, *state]
                )
                found += [i for page in pages for res in page["Reservations"] for i in res["Instances"]]
            except (ClientError, BotoCoreError) as err:
                raise _translate(err, "DescribeInstances") from None
        return found

    def _dry_runs(self, table: str, scope: DiagnosisScope, instances: Sequence[Any]) -> list[Check]:
        """Each write routectl makes, with DryRun: EC2 answers DryRunOperation when IAM allows it and
        UnauthorizedOperation when not. Should an endpoint ignore DryRun, each request still changes
        nothing: CreateRoute names the table's own local destination (AWS refuses to create it again),
        ReplaceRoute and DeleteRoute a cluster CIDR the table does not hold (nothing to replace or
        delete), ModifyInstanceAttribute turns off the source/destination check routectl turns off
        anyway."""
        listed = self.list_routes(table)
        local = next((r.destination for r in listed if r.next_hop == "local"), None)
        absent = next((c for c in scope.cluster_cidrs if c not in {r.destination for r in listed}), None)
        if not instances or local is None or absent is None:
            fix = "run doctor again once nodes with providerIDs exist"
            return [warned(self.name, "dry-run", f"nothing in {table} to dry-run the writes against", fix)]
        instance = instances[0]["InstanceId"]
        calls: dict[str, Callable[[], Any]] = {
            "CreateRoute": lambda: self._ec2.create_route(
                RouteTableId=table, **_dest_args(local), InstanceId=instance, DryRun=True
            ),
            "ReplaceRoute": lambda: self._ec2.replace_route(
                RouteTableId=table, **_dest_args(absent), InstanceId=instance, DryRun=True
            ),
            "DeleteRoute": lambda: self._ec2.delete_route(
                RouteTableId=table, **_dest_args(absent), DryRun=True
            ),
            "ModifyInstanceAttribute": lambda: self._ec2.modify_instance_attribute(
                InstanceId=instance, SourceDestCheck={"Value": False}, DryRun=True
            ),
        }
        return [self._dry_run(api, call) for api, call in calls.items()]

    def _dry_run(self, api: str, call: Callable[[], Any]) -> Check:
        name = f"dry-run {api}"
        try:
            call()
        except ClientError as err:
            code = _code(err)
            if code == "DryRunOperation":
                return passed(self.name, name, f"ec2:{api} allowed (DryRun)")
            if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
                fix = f"allow ec2:{api} in routectl's IAM policy (docs/aws.md)"
                return failed(self.name, name, f"ec2:{api} denied: {code}", fix)
            return warned(
                self.name, name, f"ec2:{api} DryRun answered {code}", "check the IAM policy by hand"
            )
        except BotoCoreError as err:
            return warned(self.name, name, f"ec2:{api} DryRun: {err}", "retry")
        return warned(self.name, name, f"ec2:{api} DryRun succeeded: the endpoint ignores DryRun", "none")

    def _associations(self, tables: Sequence[str], instances: Sequence[Any]) -> list[Check]:
        """Each node subnet's effective table (its explicit association, else its VPC's main table)
        must be a managed one, or its nodes' pod traffic never meets routectl's routes."""
        subnets = {i.get("SubnetId", ""): i["InstanceId"] for i in instances if i.get("SubnetId")}
        if not subnets:
            return []
        vpcs = sorted({i.get("VpcId", "") for i in instances})
        described = self._describe_tables(Filters=[{"Name": "vpc-id", "Values": vpcs}])
        explicit = {
            a["SubnetId"]: t["RouteTableId"]
            for t in described
            for a in t.get("Associations", [])
            if a.get("SubnetId")
        }
        main = {
            t.get("VpcId", ""): t["RouteTableId"]
            for t in described
            for a in t.get("Associations", [])
            if a.get("Main")
        }
        vpc_of = {i.get("SubnetId", ""): i.get("VpcId", "") for i in instances}
        stray = {s: explicit.get(s) or main.get(vpc_of[s], "none") for s in sorted(subnets)}
        stray = {s: t for s, t in stray.items() if t not in tables}
        if not stray:
            found = f"the nodes' {len(subnets)} subnet(s) use managed tables"
            return [passed(self.name, "associations", found)]
        found = "; ".join(f"subnet {s} (node instance {subnets[s]}) uses {t}" for s, t in stray.items())
        fix = "associate those subnets with a managed table, or tag their table as the cluster's"
        return [failed(self.name, "associations", found, fix)]

    def _source_dest_check(self, instance: Any) -> Check:
        name, ident = "source-dest-check", instance["InstanceId"]
        if instance.get("VpcId", "") not in self._vpcs:
            fix = "run nodes in the managed tables' VPC, or manage that VPC's tables"
            return failed(
                self.name,
                f"{name} {ident}",
                f"in {instance.get('VpcId')}, outside {', '.join(sorted(self._vpcs))}",
                fix,
            )
        if instance.get("SourceDestCheck") is False:
            return passed(self.name, f"{name} {ident}", "source/destination check off")
        found = "source/destination check on; routectl turns it off before routing to it"
        return warned(
            self.name, f"{name} {ident}", found, "none needed if dry-run ModifyInstanceAttribute passed"
        )

    def close(self) -> None:
        self._ec2.close()
        self._quotas.close()
        self._sts.close()
