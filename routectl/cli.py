"""`routectl` command line: run, plan, doctor, demo, version.

Exit codes: 0 success / converged / every doctor check passed, 1 not converged, leadership lost or a
doctor check failed, 2 invalid configuration (one line
naming the setting, printed before anything touches the cluster or the cloud).

`run --once` and `plan` never wait for an unreachable API server or cloud: each call has its request
timeout and a fixed number of attempts, so they end with exit 1 and one line (docs/operations.md gives
the bound); `run` keeps retrying with backoff and reports not ready on /readyz meanwhile.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

import providers
import routectl
from routectl import config as configuration
from routectl.cluster import Cluster, ClusterConfigError, ClusterError, ForbiddenError
from routectl.ops import logs

if TYPE_CHECKING:
    from routectl.kube.client import KubeCluster
    from routectl.metrics import Metrics
    from routectl.ops.serving import HttpEndpoint

log = logging.getLogger("routectl")

EXIT_OK = 0
EXIT_NOT_CONVERGED = 1
EXIT_CONFIG = 2

COMMANDS = ("run", "plan", "doctor", "demo", "version")

REACH_ATTEMPTS = 3
"""`run --once` and `plan`: attempts to reach the API server before giving up (each bounded by the
request timeout, one second apart)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="routectl", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return EXIT_OK if args else EXIT_CONFIG
    command, rest = args[0], args[1:]
    if command == "version":
        print(f"routectl {routectl.__version__}")
        return EXIT_OK
    if command == "demo":
        from routectl.demo import command as demo

        code = demo.main(rest)
        # The demo owns its process and --timeout bounds it: end now, even if a controller thread is
        # still finishing a write it started before the deadline (its cloud is in-process anyway).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if command not in ("run", "plan", "doctor"):
        parser.error(f"unknown command {command!r}")
    try:
        cfg = configuration.load(rest, os.environ, command)
    except configuration.ConfigError as err:
        print(f"routectl: invalid configuration: {err}", file=sys.stderr)
        return EXIT_CONFIG
    logs.setup(cfg.log_level, fmt=cfg.log_format)
    try:
        return {"run": _run, "plan": _plan, "doctor": _doctor}[command](cfg)
    except configuration.ConfigError as err:
        print(f"routectl: invalid configuration: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except (providers.ProviderError, ClusterError) as err:
        # Unreachable cloud or API server at start-up: one line; the Deployment restarts us.
        print(f"routectl: {command}: {err}", file=sys.stderr)
        return EXIT_NOT_CONVERGED


def _connect(cfg: configuration.Config) -> tuple[KubeCluster, providers.RouteProvider | None]:
    """Build the Kubernetes client and the provider; cloud-side misconfiguration is a ConfigError too.
    `run --once` and `plan` then make sure the API server answers (`_reach`)."""
    from routectl.kube.client import KubeCluster

    try:
        # Fenced writes must not outlive the renew deadline by a slow server: half of it per request.
        cluster = KubeCluster.from_kubeconfig(
            cfg.kubeconfig,
            request_timeout_s=_request_timeout_s(cfg),
            reporting_instance=cfg.leader_election.identity,
        )
    except ClusterConfigError as err:
        raise configuration.ConfigError(str(err)) from None
    provider: providers.RouteProvider | None = None
    if cfg.cloud is not None:  # None: routes off for `run`, no provider at all
        try:
            provider = cfg.cloud.build()
            provider.tables()
        except providers.Fatal as err:
            raise configuration.ConfigError(f"--provider {cfg.provider}: {err}") from None
    if cfg.once or cfg.command == "plan":
        _reach(cluster)
    return cluster, provider


def _request_timeout_s(cfg: configuration.Config) -> float:
    """Fenced writes must not outlive the renew deadline by a slow server: half of it per request."""
    return max(1.0, cfg.leader_election.renew_deadline_s / 2)


def _reach(cluster: Cluster) -> None:
    """A one-item node list answers within REACH_ATTEMPTS attempts, or the ClusterError ends the command.
    RBAC refusals are not retried: they will not change."""
    retrying = Retrying(
        stop=stop_after_attempt(REACH_ATTEMPTS),
        wait=wait_fixed(1.0),
        retry=retry_if_exception(lambda e: isinstance(e, ClusterError) and not isinstance(e, ForbiddenError)),
        reraise=True,
    )
    try:
        retrying(cluster.list_nodes, 1)
    except ClusterError as err:
        attempts = f"{REACH_ATTEMPTS} attempts"
        raise ClusterError(f"cannot reach the Kubernetes API server ({attempts}): {err}") from None


def once_startup_s(cfg: configuration.Config) -> float:
    """How long `run --once` may take to lead with a synced cache: a lease left by a dead holder
    expires within the lease duration, and the cache sync needs REACH_ATTEMPTS requests at most."""
    lease_s = cfg.leader_election.lease_duration_s if cfg.leader_election.enabled else 0.0
    return lease_s + REACH_ATTEMPTS * _request_timeout_s(cfg)


def _run(cfg: configuration.Config) -> int:
    from routectl.controller import Controller
    from routectl.metrics import Metrics
    from routectl.ops.serving import health_endpoint

    cluster, provider = _connect(cfg)
    metrics = Metrics(provider=cfg.provider if provider is not None else "")
    controller = Controller(cfg, cluster, provider, metrics)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    endpoints: list[HttpEndpoint] = []
    try:
        try:
            if cfg.health_address is not None:
                probes = health_endpoint(cfg.health_address, controller.healthy, controller.ready)
                endpoints.append(probes.start())
            if cfg.metrics_address is not None:
                endpoints.append(_metrics_endpoint(cfg, cfg.metrics_address, cluster, metrics).start())
        except OSError as err:  # the address is taken, or not one of this host's
            raise configuration.ConfigError(f"cannot listen: {err}") from None
        if cfg.once:
            code = EXIT_OK if controller.run_once(stop, once_startup_s(cfg)) else EXIT_NOT_CONVERGED
        else:
            code = controller.run(stop)
    finally:
        for endpoint in endpoints:
            endpoint.stop()
    if controller.unfinished:
        # Shutdown is bounded: what is still inside a slow cloud call cannot write any more (the fence
        # is closed, the lease released), and waiting for it could outlast the kubelet's grace period.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _metrics_endpoint(
    cfg: configuration.Config, address: tuple[str, int], cluster: KubeCluster, metrics: Metrics
) -> HttpEndpoint:
    """HTTPS whose every scrape the API server authenticates and authorizes; or the plain-HTTP opt-in,
    which the config allows on loopback only."""
    from routectl.kube.authn import ApiServerGate
    from routectl.ops.serving import ServingCertificate, metrics_endpoint

    if not cfg.metrics_secure:
        return metrics_endpoint(address, metrics.registry)
    try:
        certificate = ServingCertificate(cfg.metrics_cert_dir)
    except (OSError, ssl.SSLError) as err:
        raise configuration.ConfigError(f"--metrics-cert-dir {cfg.metrics_cert_dir}: {err}") from None
    gate = ApiServerGate(cluster, timeout_s=max(1.0, cfg.leader_election.renew_deadline_s / 2))
    return metrics_endpoint(address, metrics.registry, gate=gate, certificate=certificate)


def _plan(cfg: configuration.Config) -> int:
    from routectl.ops.planreport import print_plan

    cluster, provider = _connect(cfg)
    assert provider is not None  # plan always builds the provider
    return print_plan(cfg, cluster, provider, sys.stdout)


def _doctor(cfg: configuration.Config) -> int:
    """Every check, Kubernetes first; the cloud's against the nodes' instances. Reads only."""
    from routectl.kube import doctor as kube_doctor
    from routectl.kube.client import KubeCluster
    from routectl.ops import doctor

    try:
        cluster = KubeCluster.from_kubeconfig(cfg.kubeconfig, request_timeout_s=_request_timeout_s(cfg))
    except ClusterConfigError as err:
        raise configuration.ConfigError(str(err)) from None
    lease = cfg.leader_election
    needs = kube_doctor.required_access(
        leader_election=(lease.namespace, lease.name) if lease.enabled else None,
        secure_metrics=cfg.metrics_address is not None and cfg.metrics_secure,
    )
    try:
        found = kube_doctor.diagnose(cluster, needs, cfg.cluster_cidrs, _request_timeout_s(cfg))
        checks = [*found.checks, *_doctor_cloud(cfg, cluster, found.provider_ids)]
    finally:
        cluster.close()
    return doctor.render(checks, cfg.output, sys.stdout)


def _doctor_cloud(
    cfg: configuration.Config, cluster: Cluster, provider_ids: dict[str, str]
) -> list[providers.Check]:
    from routectl.ops import doctor
    from routectl.ops.planreport import compute

    if cfg.cloud is None:
        found = "configure-cloud-routes=false: routectl writes no routes, the cloud is not checked"
        return [providers.Check("cloud", "skipped", providers.CheckStatus.WARN, found)]
    try:
        provider = cfg.cloud.build()
    except providers.ProviderError as err:
        fix = "see docs/operations.md#doctor and the provider's page"
        return [providers.Check(cfg.provider, "client", providers.CheckStatus.FAIL, str(err), fix)]
    try:
        targets, checks = doctor.targets(provider.name, provider_ids, provider.target_for)
        scope = providers.DiagnosisScope(cfg.cluster_cidrs, targets)
        planned = functools.partial(compute, cfg, cluster, provider)
        return checks + doctor.cloud_checks(provider, scope, planned, cfg.adopt_routes)
    finally:
        provider.close()


if __name__ == "__main__":
    sys.exit(main())
