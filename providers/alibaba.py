"""Alibaba Cloud adapter: node routes as custom entries of VPC route tables (VPC API 2016-04-28).

Talks to the cloud only through `alibabacloud_vpc20160428` (and `alibabacloud_ecs20140526` for one read:
which VPC a node's instance is in) with credentials from
`alibabacloud_credentials`' default chain (AccessKey env, RRSA OIDC role, ECS RAM role); every SDK/Tea
exception is translated here into `providers` errors or per-route outcomes.

Invariants:
- Only entries whose Description names this cluster (`routectl cluster=<name> node=<node>`) are owned;
  a delete or replace of an entry that is not owned is refused with CONFLICT, and a duplicate destination
  held by another route is never reported as success unless that route is ours with the same next hop.
- Adoption writes only the marks (ModifyRouteEntry: RouteEntryName, Description) of an entry listed as
  adoptable — a custom entry with one Instance next hop and no routectl marks of any cluster — after
  re-reading it at the asked destination and instance; its destination and next hop never change.
- One writer per VPC at a time (a lock keyed by VPC id): the cloud refuses concurrent route writes.
- A write is reported OK only once its entries are `Available` (create) or gone (delete); entries still
  in flight when the poll deadline passes are reported RETRY.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import hashlib
import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_openapi.utils_models import Config as OpenApiConfig
from alibabacloud_tea_openapi.utils_models import OpenApiRequest
from alibabacloud_tea_openapi.utils_models import Params as OpenApiParams
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from darabonba.runtime import ExtendsParameters, RuntimeOptions

from providers.diagnosis import failed, passed, quota_checks, warned
from providers.errors import (
    ConfigurationError,
    Conflict,
    Fatal,
    InvalidProviderID,
    NotFound,
    OutsideNetwork,
    ProviderError,
    QuotaExceeded,
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
)
from providers.specs.alibaba import LIMITS, MAX_BATCH, AlibabaConfig

NAME = "alibaba"
PAGE_SIZE = 100
"""DescribeRouteEntryList MaxResult upper bound."""
TABLE_PAGE_SIZE = 50
NAME_LIMIT = 128
DESCRIPTION_LIMIT = 256
MARK = "routectl"
STS_ENDPOINT = "sts.aliyuncs.com"

_T = TypeVar("_T")


# ---- errors: what the cloud said, and what it means ----------------------------------------------------


class Kind(enum.Enum):
    THROTTLED = "throttled"
    BUSY = "busy"
    """The table/VPC has a task in flight; the same call succeeds later."""
    TRANSIENT = "transient"
    QUOTA = "quota"
    DUPLICATE = "duplicate"
    ENTRY_NOT_FOUND = "entry_not_found"
    TARGET_GONE = "target_gone"
    FATAL = "fatal"


_BUSY_CODES = frozenset(
    code.lower()
    for code in (
        "TaskConflict",
        "OperationConflict",
        "IncorrectRouteEntryStatus",
        "IncorrectVpcStatus",
        "IncorrectStatus.RouteTableStatus",
        "IncorrectStatus.RouteEntryStatus",
        "VPC_ROUTE_ENTRY_STATUS_ERROR",
        "LastTokenProcessing",
        "OperationConflict.RouteEntry",
    )
)
_TRANSIENT_CODES = frozenset(
    code.lower() for code in ("SystemBusy", "ServiceUnavailable", "InternalError", "UnknownError")
)
_DUPLICATE_CODES = frozenset(
    code.lower()
    for code in (
        "VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE",
        "InvalidCidrBlock.Duplicate",
        "InvalidCIDRBlock.Duplicate",
    )
)
_TARGET_GONE_CODES = frozenset(
    code.lower()
    for code in ("InvalidInstanceId.NotFound", "InvalidNextHop.NotFound", "InvalidNextHopId.NotFound")
)


@dataclass(frozen=True, slots=True)
class CloudError:
    """One error reported by the VPC API: a whole call's, or one entry's FailedCode."""

    code: str
    message: str
    status: int | None = None
    retry_after: float | None = None
    """Seconds, from `x-acs-retry-after` (sent in milliseconds; the SDK sleeps that many ms)."""

    @property
    def kind(self) -> Kind:
        code = self.code.lower()
        if code.startswith("throttling"):
            return Kind.THROTTLED
        if code in _BUSY_CODES:
            return Kind.BUSY
        if code.startswith("quotaexceeded") or ("quota" in code and "exceed" in code):
            return Kind.QUOTA
        if code in _DUPLICATE_CODES:
            return Kind.DUPLICATE
        if code == "invalidrouteentry.notfound":
            return Kind.ENTRY_NOT_FOUND
        if code in _TARGET_GONE_CODES:
            return Kind.TARGET_GONE
        if code in _TRANSIENT_CODES or (self.status or 0) >= 500:
            return Kind.TRANSIENT
        return Kind.FATAL

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def raise_for(self, call: str) -> ProviderError:
        """The typed error for a whole-call failure of a read (or a write nobody can attribute)."""
        text = f"{call}: {self}"
        match self.kind:
            case Kind.THROTTLED:
                return Throttled(text, self.retry_after)
            case Kind.BUSY | Kind.TRANSIENT if self.retry_after is not None:
                return Throttled(text, self.retry_after)
            case Kind.BUSY | Kind.TRANSIENT:
                return Transient(text)
            case Kind.QUOTA:
                return QuotaExceeded(text)
            case Kind.DUPLICATE:
                return Conflict(text)
            case Kind.ENTRY_NOT_FOUND | Kind.TARGET_GONE:
                return NotFound(text)
        return Fatal(text)

    def result(self, route: Route, *, deleting: bool = False) -> RouteResult:
        """This error as one route's outcome."""
        kind = self.kind
        match kind:
            case Kind.THROTTLED | Kind.BUSY | Kind.TRANSIENT:
                outcome = Outcome.RETRY
            case Kind.QUOTA:
                outcome = Outcome.QUOTA_EXCEEDED
            case Kind.DUPLICATE:
                outcome = Outcome.CONFLICT
            case Kind.ENTRY_NOT_FOUND if deleting:
                outcome = Outcome.ALREADY_DONE
            case _:
                outcome = Outcome.FATAL
        return RouteResult(
            route,
            outcome,
            str(self),
            retry_after=self.retry_after,
            target_gone=kind is Kind.TARGET_GONE,
            throttled=kind is Kind.THROTTLED,
        )


def _cloud_error(exc: Exception) -> CloudError:
    """Translate anything the SDK raised (Tea/Dara response errors, transport errors) at the boundary."""
    code = getattr(exc, "code", None)
    if code in (None, "", "None"):
        data = getattr(exc, "data", None)
        code = data.get("Code") if isinstance(data, dict) else None
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    retry_after_ms = getattr(exc, "retry_after", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not code:
        # No API error code: connection refused, timeout, malformed body — the request may not have landed.
        return CloudError("Transport", message, status=status if isinstance(status, int) else 503)
    return CloudError(
        str(code),
        str(message),
        status=status if isinstance(status, int) else None,
        retry_after=retry_after_ms / 1000 if isinstance(retry_after_ms, int | float) else None,
    )


class _CallFailed(Exception):
    """Internal carrier of a CloudError between the SDK boundary and the outcome mapping."""

    def __init__(self, error: CloudError) -> None:
        super().__init__(str(error))
        self.error = error


# ---- ownership marks -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Marks:
    """The RouteEntryName / Description routectl writes, and how it reads them back."""

    cluster: str

    def name(self, node: str) -> str:
        """`routectl-<cluster>-<node>`, cut to the API's 128 characters (starts with a letter)."""
        return f"{MARK}-{self.cluster}-{node}"[:NAME_LIMIT]

    def description(self, node: str) -> str:
        """`routectl cluster=<cluster> node=<node>`; the node part is cut to fit 256 characters."""
        return f"{MARK} cluster={self.cluster} node={node}"[:DESCRIPTION_LIMIT]

    def owner(self, description: str) -> str | None:
        """The node named by a description of this cluster, or None when the entry is not ours."""
        words = description.split()
        if not words or words[0] != MARK:
            return None
        fields = dict(word.partition("=")[::2] for word in words[1:])
        if fields.get("cluster") != self.cluster:
            return None
        return fields.get("node", "")


# ---- polling -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How long to wait for entries to leave Creating/Deleting: exponential from `first` to `cap`."""

    first: float = 0.2
    cap: float = 2.0
    timeout: float = 60.0


class _WaitHonouringRetryAfter(tenacity.wait.wait_base):
    """Exponential backoff, but never shorter than the cloud's retry-after when it gave one."""

    def __init__(self, policy: PollPolicy) -> None:
        self._base = tenacity.wait_exponential(multiplier=policy.first, max=policy.cap)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        wait = float(self._base(retry_state))
        outcome = retry_state.outcome
        if outcome is not None and outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, Throttled) and exc.retry_after is not None:
                return max(wait, exc.retry_after)
        return wait


# ---- the adapter ---------------------------------------------------------------------------------------

_PROVIDER_ID = re.compile(r"^(?:(?P<region>[a-z0-9-]+)\.)?(?P<instance>i-[0-9a-z]+)$")
_PENDING = frozenset({"pending", "creating", "modifying"})


@dataclass(frozen=True, slots=True)
class _Settled:
    """What polling found for one destination: the listed entry, or None when it is absent."""

    route: Route | None
    in_flight: bool


class AlibabaProvider:
    """RouteProvider over the Alibaba Cloud VPC API (docs/architecture.md: the provider port, cloud facts)."""

    name = NAME

    def __init__(
        self,
        config: AlibabaConfig,
        client: VpcClient,
        *,
        ecs: EcsClient | None = None,
        sts: OpenApiClient | None = None,
        poll: PollPolicy = PollPolicy(),
        connect_timeout_ms: int = 5_000,
        read_timeout_ms: int = 10_000,
    ) -> None:
        self._config = config
        self._client = client
        self._ecs = ecs
        """ECS client for `prepare_target`'s VPC check; None skips it (the VPC API then refuses a route
        to an instance of another VPC on create)."""
        self._sts = sts
        """STS, for `routectl doctor`'s GetCallerIdentity only; None: that check is a warning."""
        self._region = config.region
        self._marks = Marks(config.common.cluster_name)
        self._poll = poll
        self._timeouts = {"connect_timeout": connect_timeout_ms, "read_timeout": read_timeout_ms}
        self._table_vpc: dict[str, str] = {}
        self._writers: dict[str, threading.Lock] = {}
        self._token_generations: dict[str, int] = {}
        """Batch content → how many of its ClientTokens were found stale (see `_create_wanted`)."""
        self._guard = threading.Lock()
        self._observers: list[CallObserver] = []
        self._write_guard: WriteGuard = no_guard
        self._limits = config.common.limits(LIMITS)

    @property
    def limits(self) -> Limits:
        return self._limits

    def close(self) -> None:
        """The SDK client holds no resources that need closing."""

    # ---- SDK boundary ----------------------------------------------------------------------------------

    def guard_writes(self, guard: WriteGuard) -> None:
        self._write_guard = guard

    def observe(self, observer: CallObserver) -> None:
        """Report every API call (action name, "200" or the error code, seconds) to `observer`."""
        with self._guard:
            self._observers.append(observer)

    def _call(self, call: Callable[[Any, RuntimeOptions], Any], request: Any, *, token: str = "") -> Any:
        """One SDK call with timeouts; raises _CallFailed carrying the translated error."""
        runtime = RuntimeOptions(autoretry=False, **self._timeouts)
        if token:
            runtime.extends_parameters = ExtendsParameters(queries={"ClientToken": token})
        begun, code = time.monotonic(), "200"
        try:
            return call(request, runtime).body
        except Exception as exc:
            error = _cloud_error(exc)
            code = error.code
            raise _CallFailed(error) from exc
        finally:
            with self._guard:
                observers = tuple(self._observers)
            api = type(request).__name__.removesuffix("Request")
            for observer in observers:
                observer(api, code, time.monotonic() - begun)

    def _read(self, call: Callable[[Any, RuntimeOptions], Any], request: Any) -> Any:
        try:
            return self._call(call, request)
        except _CallFailed as failed:
            raise failed.error.raise_for(type(request).__name__.removesuffix("Request")) from failed

    # ---- tables ----------------------------------------------------------------------------------------

    def tables(self) -> Sequence[str]:
        """Explicit tables (each verified to exist) or every VRouter table of the VPC."""
        if self._config.route_table_ids:
            found = {}
            for table_id in self._config.route_table_ids:
                listed = self._describe_tables(route_table_id=table_id)
                if not listed:
                    raise ConfigurationError(f"route table {table_id}: not found in region {self._region}")
                found.update(listed)
            tables = found
        else:
            tables = self._describe_tables()
        if self._config.vpc_id:
            foreign = sorted(t for t, vpc in tables.items() if vpc != self._config.vpc_id)
            if foreign:
                raise ConfigurationError(
                    f"route tables {', '.join(foreign)}: not in VPC {self._config.vpc_id}"
                )
        if not tables:
            raise ConfigurationError(f"VPC {self._config.vpc_id}: no route tables found in {self._region}")
        with self._guard:
            self._table_vpc.update(tables)
        return sorted(tables)

    def _describe_tables(self, route_table_id: str = "") -> dict[str, str]:
        """Table id → VPC id, every page."""
        tables: dict[str, str] = {}
        for page in range(1, 10_000):
            request = vpc_models.DescribeRouteTableListRequest(
                region_id=self._region,
                vpc_id=self._config.vpc_id or None,
                route_table_id=route_table_id or None,
                page_number=page,
                page_size=TABLE_PAGE_SIZE,
            )
            body = self._read(self._client.describe_route_table_list_with_options, request)
            listed = body.router_table_list.router_table_list_type if body.router_table_list else []
            for table in listed or []:
                if (table.router_type or "VRouter") == "VRouter":
                    tables[table.route_table_id] = table.vpc_id or self._config.vpc_id
            if page * TABLE_PAGE_SIZE >= int(body.total_count or 0):
                break
        return tables

    # ---- reads -----------------------------------------------------------------------------------------

    def list_routes(self, table: str) -> list[Route]:
        return list(self._describe_routes(table))

    def _describe_routes(self, table: str, destinations: Sequence[str] = ()) -> Iterator[Route]:
        """Every custom entry of the table (optionally only these destinations), following NextToken."""
        token = ""
        while True:
            request = vpc_models.DescribeRouteEntryListRequest(
                region_id=self._region,
                route_table_id=table,
                route_entry_type="Custom",
                dest_cidr_block_list=list(destinations) or None,
                max_result=PAGE_SIZE,
                next_token=token or None,
            )
            body = self._read(self._client.describe_route_entry_list_with_options, request)
            for entry in body.route_entrys.route_entry if body.route_entrys else []:
                route = self._to_route(entry)
                if route is not None:
                    yield route
            token = body.next_token or ""
            if not token:
                return

    def _to_route(self, entry: Any) -> Route | None:
        """One listed entry as a Route; None for destinations that are not CIDRs (prefix lists)."""
        try:
            destination: Network = ipaddress.ip_network(entry.destination_cidr_block, strict=False)
        except (TypeError, ValueError):
            return None
        hops = entry.next_hops.next_hop if entry.next_hops and entry.next_hops.next_hop else []
        node = self._marks.owner(entry.description or "")
        status = (entry.status or "").lower()
        state = (
            RouteState.PENDING
            if status in _PENDING
            else RouteState.DELETING
            if status == "deleting"
            else RouteState.ACTIVE
        )
        target = None
        if len(hops) == 1 and (hops[0].next_hop_type or "") == "Instance":
            if hops[0].enabled == 0:
                state = RouteState.BLACKHOLE
            else:
                target = Target(instance=hops[0].next_hop_id, zone=self._region)
        marked = (entry.description or "").split()[:1] == [MARK] or (entry.route_entry_name or "").startswith(
            MARK + "-"
        )
        return Route(
            destination=destination,
            target=target,
            owned=node is not None,
            state=state,
            node=node or "",
            cloud_id=entry.route_entry_id or "",
            next_hop=",".join(f"{h.next_hop_type}:{h.next_hop_id}" for h in hops),
            adoptable=not marked and target is not None and state is RouteState.ACTIVE,
        )

    # ---- writes ----------------------------------------------------------------------------------------

    @contextmanager
    def _writer(self, table: str) -> Iterator[None]:
        """Hold the VPC's single-writer lock for the duration of a write and its wait."""
        with self._guard:
            vpc = self._table_vpc.get(table) or self._config.vpc_id or table
            lock = self._writers.setdefault(vpc, threading.Lock())
        with lock:
            yield

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        with self._writer(table):
            return _in_batches(routes, lambda batch: self._create(table, batch, replace_ours=True))

    def delete_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        with self._writer(table):
            return _in_batches(routes, lambda batch: self._delete(table, batch))

    def replace_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        """Delete the current owned entry for each destination, then create the desired one (both awaited).

        ModifyRouteEntry could change a next hop in place, but only one entry per call; a replaced route is
        wrong by definition, so two batched calls beat N single ones at no cost in correctness.
        """
        with self._writer(table):
            return _in_batches(routes, lambda batch: self._replace(table, batch))

    def adopt_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        """Write this cluster's marks on each adoptable entry in place, one ModifyRouteEntry per entry
        (the API modifies one at a time); the entry keeps routing throughout."""
        with self._writer(table):
            return [self._adopt(table, route) for route in routes]

    def _adopt(self, table: str, route: Route) -> RouteResult:
        try:
            listed = {r.destination: r for r in self._describe_routes(table, [str(route.destination)])}
        except ProviderError as err:
            return _error_result(route, err)
        entry = listed.get(route.destination)
        if entry is not None and entry.owned and entry.node == route.node and entry.target == route.target:
            return RouteResult(entry, Outcome.ALREADY_DONE)
        if (
            entry is None
            or not entry.adoptable
            or (entry.cloud_id, entry.target) != (route.cloud_id, route.target)
        ):
            held = "nothing" if entry is None else f"{entry.cloud_id} via {entry.next_hop}"
            return RouteResult(
                route, Outcome.CONFLICT, f"{route.destination}: {held} is not adoptable as asked"
            )
        request = vpc_models.ModifyRouteEntryRequest(
            region_id=self._region,
            route_entry_id=entry.cloud_id,
            route_entry_name=self._marks.name(route.node),
            description=self._marks.description(route.node),
        )
        self._write_guard()
        try:
            self._call(self._client.modify_route_entry_with_options, request)
        except _CallFailed as failed:
            return failed.error.result(route)
        settled = self._await(table, [route], gone=False)[route.destination]
        if settled.route is not None and settled.route.owned and not settled.in_flight:
            return RouteResult(settled.route, Outcome.OK, f"adopted {entry.cloud_id}")
        return RouteResult(route, Outcome.RETRY, f"entry {entry.cloud_id} not seen marked yet")

    def _create(self, table: str, routes: Sequence[Route], *, replace_ours: bool) -> list[RouteResult]:
        results: dict[int, RouteResult] = {}
        wanted: list[tuple[int, Route]] = []
        for i, route in enumerate(routes):
            if route.target is None:
                results[i] = RouteResult(route, Outcome.FATAL, "desired route has no target instance")
            else:
                wanted.append((i, route))
        if wanted:
            results.update(self._create_wanted(table, wanted, replace_ours=replace_ours))
        return [results[i] for i in range(len(routes))]

    def _create_wanted(
        self, table: str, wanted: Sequence[tuple[int, Route]], *, replace_ours: bool
    ) -> dict[int, RouteResult]:
        entries = [
            vpc_models.CreateRouteEntriesRequestRouteEntries(
                route_table_id=table,
                dst_cidr_block=str(route.destination),
                next_hop=_instance(route),
                next_hop_type="Instance",
                ip_version=route.destination.version,
                name=self._marks.name(route.node),
                description=self._marks.description(route.node),
            )
            for _, route in wanted
        ]
        request = vpc_models.CreateRouteEntriesRequest(region_id=self._region, route_entries=entries)
        op = "create" if replace_ours else "recreate"
        content = _batch_key(op, table, (f"{r.destination}>{_instance(r)}" for _, r in wanted))
        generation = self._token_generations.get(content, 0)
        self._write_guard()
        try:
            body = self._call(
                self._client.create_route_entries_with_options,
                request,
                token=f"routectl-{content[:40]}-{generation}",
            )
        except _CallFailed as failed:
            return {i: failed.error.result(route) for i, route in wanted}
        failures = {
            (f.dst_cidr_block, f.next_hop): CloudError(f.failed_code or "", f.failed_message or "")
            for f in body.failed_route_entries or []
        }
        results: dict[int, RouteResult] = {}
        accepted: list[tuple[int, Route]] = []
        duplicates: list[tuple[int, Route]] = []
        for i, route in wanted:
            error = failures.get((str(route.destination), _instance(route)))
            if error is None:
                accepted.append((i, route))
            elif error.kind is Kind.DUPLICATE:
                duplicates.append((i, route))
            else:
                results[i] = error.result(route)
        settled = self._await(table, [r for _, r in (*accepted, *duplicates)], gone=False)
        for i, route in accepted:
            results[i] = self._created(route, settled[route.destination], Outcome.OK)
        to_replace: list[tuple[int, Route]] = []
        for i, route in duplicates:
            current = settled[route.destination].route
            if current is not None and current.owned and current.target != route.target and replace_ours:
                to_replace.append((i, route))
            else:
                results[i] = self._created(route, settled[route.destination], Outcome.ALREADY_DONE)
        if failures or any(not result.outcome.succeeded for result in results.values()):
            # A stored answer must not be replayed for a table that has changed since: a token can
            # carry an old success for entries deleted since, or an old failure (quota, busy) that no
            # longer holds. A new generation makes the next attempt a fresh request.
            self._token_generations[content] = generation + 1
        if to_replace:
            replaced = self._replace(table, [r for _, r in to_replace])
            results.update((i, result) for (i, _), result in zip(to_replace, replaced, strict=True))
        return results

    def _created(self, route: Route, seen: _Settled, outcome: Outcome) -> RouteResult:
        """`outcome` only when the listed entry is ours, settled, and points at our target: a destination
        held by anything else is never success, whatever the API answered."""
        current = seen.route
        if current is None:
            return RouteResult(route, Outcome.RETRY, "entry accepted but no longer listed")
        if not current.owned:
            return RouteResult(
                route,
                Outcome.CONFLICT,
                f"destination held by a route this cluster does not own (next hop {current.next_hop or '-'})",
            )
        if current.target != route.target:
            return RouteResult(
                route, Outcome.CONFLICT, f"owned route points at {current.next_hop}; replace it"
            )
        if seen.in_flight:
            return RouteResult(
                route, Outcome.RETRY, f"entry still {current.state.value} after {self._poll.timeout}s"
            )
        if current.state is RouteState.BLACKHOLE:
            return RouteResult(route, Outcome.FATAL, "next hop instance is gone", target_gone=True)
        return RouteResult(route, outcome)

    def _delete(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        results: dict[int, RouteResult] = {}
        doomed: list[tuple[int, Route]] = []
        for i, route in enumerate(routes):
            if not route.owned:
                results[i] = RouteResult(
                    route, Outcome.CONFLICT, "refusing to delete a route this cluster does not own"
                )
            elif not route.cloud_id and route.target is None:
                results[i] = RouteResult(route, Outcome.FATAL, "route has neither an entry id nor a next hop")
            else:
                doomed.append((i, route))
        if doomed:
            results.update(self._delete_doomed(table, doomed))
        return [results[i] for i in range(len(routes))]

    def _delete_doomed(self, table: str, doomed: Sequence[tuple[int, Route]]) -> dict[int, RouteResult]:
        entries = [
            vpc_models.DeleteRouteEntriesRequestRouteEntries(
                route_table_id=table,
                route_entry_id=route.cloud_id or None,
                dst_cidr_block=None if route.cloud_id else str(route.destination),
                next_hop=None if route.cloud_id else _instance(route),
            )
            for _, route in doomed
        ]
        request = vpc_models.DeleteRouteEntriesRequest(region_id=self._region, route_entries=entries)
        self._write_guard()
        try:
            body = self._call(self._client.delete_route_entries_with_options, request)
        except _CallFailed as failed:
            if failed.error.kind is Kind.ENTRY_NOT_FOUND:
                return self._after_refused_delete(table, doomed)
            return {i: failed.error.result(route, deleting=True) for i, route in doomed}
        failures = {
            f.route_entry_id or f"{f.dst_cidr_block}>{f.next_hop}": CloudError(
                f.failed_code or "", f.failed_message or ""
            )
            for f in body.failed_route_entries or []
        }
        results: dict[int, RouteResult] = {}
        accepted: list[tuple[int, Route]] = []
        for i, route in doomed:
            error = failures.get(route.cloud_id or f"{route.destination}>{_instance(route)}")
            if error is None:
                accepted.append((i, route))
            else:
                results[i] = error.result(route, deleting=True)
        settled = self._await(table, [r for _, r in accepted], gone=True)
        for i, route in accepted:
            if settled[route.destination].route is None:
                results[i] = RouteResult(route, Outcome.OK)
            else:
                results[i] = RouteResult(
                    route, Outcome.RETRY, f"entry still listed after {self._poll.timeout}s"
                )
        return results

    def _after_refused_delete(
        self, table: str, doomed: Sequence[tuple[int, Route]]
    ) -> dict[int, RouteResult]:
        """The cloud refused a whole batch because some entry was already gone: one read tells which."""
        try:
            listed = {
                r.destination for r in self._describe_routes(table, [str(r.destination) for _, r in doomed])
            }
        except ProviderError as err:
            return {i: _error_result(route, err) for i, route in doomed}
        return {
            i: RouteResult(route, Outcome.RETRY, "batch refused: another entry of it was already gone")
            if route.destination in listed
            else RouteResult(route, Outcome.ALREADY_DONE)
            for i, route in doomed
        }

    def _replace(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        try:
            current = {
                r.destination: r for r in self._describe_routes(table, [str(r.destination) for r in routes])
            }
        except ProviderError as err:
            return [_error_result(route, err) for route in routes]
        results: dict[int, RouteResult] = {}
        stale: list[tuple[int, Route]] = []
        for i, route in enumerate(routes):
            existing = current.get(route.destination)
            if existing is None:
                continue
            if not existing.owned:
                results[i] = RouteResult(
                    route, Outcome.CONFLICT, "destination held by a route not owned by this cluster"
                )
            elif existing.target == route.target and existing.state is RouteState.ACTIVE:
                results[i] = RouteResult(route, Outcome.ALREADY_DONE)
            else:
                stale.append((i, existing))
        if stale:
            deleted = self._delete(table, [r for _, r in stale])
            for (i, _), result in zip(stale, deleted, strict=True):
                if not result.outcome.succeeded:
                    results[i] = dataclasses.replace(result, route=routes[i])
        fresh = [i for i in range(len(routes)) if i not in results]
        created = self._create(table, [routes[i] for i in fresh], replace_ours=False)
        results.update(zip(fresh, created, strict=True))
        return [results[i] for i in range(len(routes))]

    def _await(self, table: str, routes: Sequence[Route], *, gone: bool) -> dict[Network, _Settled]:
        """Poll until every destination has settled (Available when creating, absent when deleting).

        Returns what the last poll saw; destinations still in flight at the deadline are marked so.
        A poll that cannot read the table leaves every destination in flight (reported RETRY).
        """
        destinations = [r.destination for r in routes]
        if not destinations:
            return {}

        def poll() -> dict[Network, _Settled]:
            listed = {r.destination: r for r in self._describe_routes(table, [str(d) for d in destinations])}
            return {d: _settled(listed.get(d), gone=gone) for d in destinations}

        def unsettled(seen: dict[Network, _Settled]) -> bool:
            return any(s.in_flight for s in seen.values())

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_delay(self._poll.timeout),
            wait=_WaitHonouringRetryAfter(self._poll),
            retry=tenacity.retry_if_result(unsettled)
            | tenacity.retry_if_exception_type((Throttled, Transient)),
            retry_error_callback=lambda state: _last_seen(state, destinations),
            reraise=False,
        )
        seen: dict[Network, _Settled] = retrying(poll)
        return seen

    # ---- targets ---------------------------------------------------------------------------------------

    def target_for(self, provider_id: str) -> Target:
        """`<region>.<instance-id>`, optionally `alicloud://`-prefixed, or a bare `i-…`."""
        match = _PROVIDER_ID.match(provider_id.removeprefix("alicloud://"))
        if match is None:
            raise InvalidProviderID(
                f"providerID {provider_id!r}: expected <region>.<instance-id> (optionally alicloud://) or i-…"
            )
        region = match["region"]
        if region and self._region and region != self._region:
            raise InvalidProviderID(
                f"providerID {provider_id!r}: instance is in {region}, not {self._region}"
            )
        return Target(instance=match["instance"], zone=self._region)

    def prepare_target(self, target: Target) -> None:
        """Verify the instance is in the managed tables' VPC (ECS DescribeInstances, a read; else
        `OutsideNetwork`); nothing to set up: ECS has no source/destination check."""
        if self._ecs is None:
            return
        with self._guard:
            managed = set(self._table_vpc.values())
        if not managed:
            self.tables()
            with self._guard:
                managed = set(self._table_vpc.values())
        found = self._describe_instances([target.instance])
        if not found:
            raise NotFound(f"DescribeInstances: instance {target.instance} not found in {self._region}")
        vpc = _vpc_attributes(found[0])[0]
        if vpc not in managed:
            raise OutsideNetwork(target.instance, vpc, ", ".join(sorted(managed)))

    def _describe_instances(self, ids: Sequence[str]) -> list[Any]:
        """ECS DescribeInstances of these instances (at most 100, ECS's page); [] without an ECS client."""
        if self._ecs is None or not ids:
            return []
        request = ecs_models.DescribeInstancesRequest(
            region_id=self._region, instance_ids=json.dumps(list(ids)), page_size=100
        )
        body = self._read(self._ecs.describe_instances_with_options, request)
        return list(body.instances.instance or []) if body.instances is not None else []

    # ---- doctor ----------------------------------------------------------------------------------------

    def diagnose(self, scope: DiagnosisScope) -> list[Check]:
        """Identity (STS), the managed tables, both writes proven with DryRun, the nodes' vSwitches on a
        managed table, and custom-route quota headroom per table. Reads only."""
        checks = [self._identity()]
        try:
            tables = self.tables()
        except ProviderError as err:
            return [*checks, failed(self.name, "route-tables", str(err), "pass --vpc-id or --route-table-id")]
        with self._guard:
            vpcs = sorted({self._table_vpc[t] for t in tables})
        checks.append(passed(self.name, "route-tables", f"{', '.join(tables)} in {', '.join(vpcs)}"))
        instances = self._describe_instances(sorted({t.instance for t in scope.targets})[:100])
        checks += self._dry_runs(tables[0], scope, instances)
        checks.append(self._associations(tables, vpcs, instances))
        for table in tables:
            quota = self._limits.routes_per_table
            listed = self.list_routes(table)
            checks += quota_checks(
                self.name, table, listed, scope.cluster_cidrs, len(scope.targets), quota, per_family=False
            )
        return checks

    def _identity(self) -> Check:
        if self._sts is None:
            return warned(self.name, "identity", "no STS client", "check the credentials by hand")
        params = OpenApiParams(
            action="GetCallerIdentity",
            version="2015-04-01",
            protocol="HTTPS",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        runtime = RuntimeOptions(autoretry=False, **self._timeouts)
        try:
            body = self._sts.call_api(params, OpenApiRequest(), runtime).get("body") or {}
        except Exception as exc:  # the SDK raises its own types; translated like every other call
            fix = "give the pod Alibaba credentials (RRSA or a Secret, docs/alibaba.md)"
            return failed(self.name, "identity", f"STS GetCallerIdentity: {_cloud_error(exc)}", fix)
        return passed(self.name, "identity", f"calling as {body.get('Arn', '?')}")

    def _dry_runs(self, table: str, scope: DiagnosisScope, instances: Sequence[Any]) -> list[Check]:
        """CreateRouteEntries and DeleteRouteEntries with DryRun: `DryRunOperation` when RAM allows
        them. Were DryRun ignored, neither could change the table: the create names a system route's
        destination (the VPC refuses a custom entry there), the delete a cluster CIDR with no entry."""
        system = self._system_destination(table)
        listed = {r.destination for r in self.list_routes(table)}
        absent = next((c for c in scope.cluster_cidrs if c not in listed), None)
        if not instances or system is None or absent is None:
            fix = "run doctor again once nodes with providerIDs exist"
            return [warned(self.name, "dry-run", f"nothing in {table} to dry-run the writes against", fix)]
        hop = instances[0].instance_id
        create = vpc_models.CreateRouteEntriesRequest(
            region_id=self._region,
            dry_run=True,
            route_entries=[
                vpc_models.CreateRouteEntriesRequestRouteEntries(
                    route_table_id=table, dst_cidr_block=system, next_hop=hop, next_hop_type="Instance"
                )
            ],
        )
        delete = vpc_models.DeleteRouteEntriesRequest(
            region_id=self._region,
            dry_run=True,
            route_entries=[
                vpc_models.DeleteRouteEntriesRequestRouteEntries(
                    route_table_id=table, dst_cidr_block=str(absent), next_hop=hop
                )
            ],
        )
        return [
            self._dry_run("CreateRouteEntries", self._client.create_route_entries_with_options, create),
            self._dry_run("DeleteRouteEntries", self._client.delete_route_entries_with_options, delete),
        ]

    def _system_destination(self, table: str) -> str | None:
        request = vpc_models.DescribeRouteEntryListRequest(
            region_id=self._region, route_table_id=table, route_entry_type="System", max_result=PAGE_SIZE
        )
        body = self._read(self._client.describe_route_entry_list_with_options, request)
        entries = body.route_entrys.route_entry if body.route_entrys else []
        return next((e.destination_cidr_block for e in entries or [] if e.destination_cidr_block), None)

    def _dry_run(self, api: str, call: Callable[[Any, RuntimeOptions], Any], request: Any) -> Check:
        name = f"dry-run {api}"
        try:
            self._call(call, request)
        except _CallFailed as failure:
            code = failure.error.code
            if code == "DryRunOperation":
                return passed(self.name, name, f"vpc:{api} allowed (DryRun)")
            if code.startswith("Forbidden") or code in ("NoPermission", "NoAuth"):
                fix = f"allow vpc:{api} in routectl's RAM policy (docs/alibaba.md)"
                return failed(self.name, name, f"vpc:{api} denied: {failure.error}", fix)
            return warned(
                self.name, name, f"vpc:{api} DryRun answered {failure.error}", "check the RAM policy"
            )
        return warned(self.name, name, f"vpc:{api} DryRun succeeded: the endpoint ignores DryRun", "none")

    def _associations(self, tables: Sequence[str], vpcs: Sequence[str], instances: Sequence[Any]) -> Check:
        """Each node's vSwitch uses the custom table bound to it, else its VPC's system table; that
        table must be a managed one."""
        bound: dict[str, str] = {}
        system: dict[str, str] = {}
        for vpc in sorted({_vpc_attributes(i)[0] for i in instances}):
            for table in self._table_list(vpc):
                if (table.route_table_type or "System") == "System":
                    system[vpc] = table.route_table_id
                ids = table.v_switch_ids.v_switch_id if table.v_switch_ids else []
                bound.update(dict.fromkeys(ids or [], table.route_table_id))
        stray = []
        for node in instances:
            vpc, vswitch = _vpc_attributes(node)
            uses = bound.get(vswitch) or system.get(vpc, "none")
            if uses not in tables:
                stray.append(f"vSwitch {vswitch} (node instance {node.instance_id}, {vpc}) uses {uses}")
        if stray:
            fix = f"bind those vSwitches to a managed table ({', '.join(tables)}) or manage their table"
            return failed(self.name, "associations", "; ".join(stray[:5]), fix)
        return passed(
            self.name, "associations", f"the nodes' vSwitches use managed tables ({', '.join(vpcs)})"
        )

    def _table_list(self, vpc: str) -> list[Any]:
        request = vpc_models.DescribeRouteTableListRequest(
            region_id=self._region, vpc_id=vpc, page_size=TABLE_PAGE_SIZE
        )
        body = self._read(self._client.describe_route_table_list_with_options, request)
        return list(body.router_table_list.router_table_list_type or []) if body.router_table_list else []


def _vpc_attributes(instance: Any) -> tuple[str, str]:
    """(VPC id, vSwitch id) of an ECS instance, "" where absent."""
    attributes = instance.vpc_attributes
    if attributes is None:
        return "", ""
    return attributes.vpc_id or "", attributes.v_switch_id or ""


def _settled(route: Route | None, *, gone: bool) -> _Settled:
    if route is None:
        return _Settled(None, in_flight=False)
    in_flight = True if gone else route.state in (RouteState.PENDING, RouteState.DELETING)
    return _Settled(route, in_flight=in_flight)


def _last_seen(state: tenacity.RetryCallState, destinations: Sequence[Network]) -> dict[Network, _Settled]:
    """At the deadline: the last poll's view, or 'unknown, in flight' if the last poll failed."""
    outcome = state.outcome
    if outcome is not None and not outcome.failed:
        seen: dict[Network, _Settled] = outcome.result()
        return seen
    return {d: _Settled(None, in_flight=True) for d in destinations}


def _instance(route: Route) -> str:
    return route.target.instance if route.target is not None else route.next_hop.partition(":")[2]


def _error_result(route: Route, err: ProviderError) -> RouteResult:
    if isinstance(err, Throttled):
        return RouteResult(route, Outcome.RETRY, str(err), retry_after=err.retry_after)
    if isinstance(err, Transient):
        return RouteResult(route, Outcome.RETRY, str(err))
    return RouteResult(route, Outcome.FATAL, str(err))


def _batch_key(op: str, table: str, items: Iterable[str]) -> str:
    """A digest of a batch's content: the base of its ClientToken, so a retried batch reuses the token."""
    return hashlib.sha256("\n".join((op, table, *sorted(items))).encode()).hexdigest()


def _in_batches(
    routes: Sequence[Route], write: Callable[[Sequence[Route]], list[RouteResult]]
) -> list[RouteResult]:
    results: list[RouteResult] = []
    for start in range(0, len(routes), MAX_BATCH):
        results.extend(write(routes[start : start + MAX_BATCH]))
    return results


def _sdk_config(config: AlibabaConfig) -> OpenApiConfig:
    """The SDK clients' config: the default credential chain, resolved now so that missing credentials
    are a configuration error at start; or static dummy keys against a test endpoint."""
    if config.common.endpoint:
        credential = CredentialClient(
            CredentialConfig(
                type="access_key", access_key_id="routectl-test", access_key_secret="routectl-test"
            )
        )
        scheme, sep, rest = config.common.endpoint.partition("://")
        endpoint, protocol = (rest, scheme.upper()) if sep else (scheme, "HTTP")
        return OpenApiConfig(
            credential=credential, region_id=config.region, endpoint=endpoint, protocol=protocol
        )
    chain = CredentialClient()
    try:
        chain.get_credential()
    except CredentialException as err:
        detail = " ".join(str(err).split())
        raise ConfigurationError(
            f"alibaba: no usable credentials ({detail}); see docs/alibaba.md for RRSA or a Secret"
        ) from None
    return OpenApiConfig(credential=chain, region_id=config.region, protocol="HTTPS")


def build(config: AlibabaConfig, *, poll: PollPolicy = PollPolicy()) -> AlibabaProvider:
    """The adapter for `config`; raises ConfigurationError naming an unusable cluster name or missing
    credentials."""
    name = config.common.cluster_name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise ConfigurationError(f"cluster name {name!r}: 1-100 of [A-Za-z0-9._-] (used in route names)")
    sdk = _sdk_config(config)
    sts = copy.copy(sdk)
    sts.endpoint = sts.endpoint or STS_ENDPOINT
    return AlibabaProvider(config, VpcClient(sdk), ecs=EcsClient(sdk), sts=OpenApiClient(sts), poll=poll)


__all__ = ["AlibabaProvider", "CloudError", "Kind", "Marks", "PollPolicy", "build"]
