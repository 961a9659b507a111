"""`routectl doctor`: the verdict over every check, printed as one line per check or as JSON.

Pure: checks in (from the Kubernetes layer and the provider's `diagnose`), text and an exit code out.
A failed check ("✗") means routectl cannot work as set up; a warning ("!") means something could not be
proven or looks suspicious; the exit code is 1 when any check failed, else 0 (warnings do not fail).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from providers import Check, CheckStatus, Diagnosable, DiagnosisScope, ProviderError, RouteProvider, Target
from routectl.cluster import ClusterError
from routectl.engine.planner import Change, Plan, RouteConflict, adoptable_routes

SYMBOLS = {CheckStatus.PASS: "✓", CheckStatus.FAIL: "✗", CheckStatus.WARN: "!"}

EXIT_HEALTHY = 0
EXIT_BROKEN = 1


def targets(
    area: str, provider_ids: Mapping[str, str], target_for: Callable[[str], Target]
) -> tuple[tuple[Target, ...], list[Check]]:
    """Each node's instance, parsed by the provider; a providerID it cannot parse is a failed check
    (a node without one is the Kubernetes checks' finding already)."""
    parsed: list[Target] = []
    bad: list[str] = []
    for node, provider_id in sorted(provider_ids.items()):
        if not provider_id:
            continue
        try:
            parsed.append(target_for(provider_id))
        except ProviderError as err:
            bad.append(f"{node}: {err}")
    if not bad:
        return tuple(parsed), []
    fix = "run the kubelet with --cloud-provider=external and this cloud's CCM, or fix --provider"
    return tuple(parsed), [Check(area, "provider-ids", CheckStatus.FAIL, "; ".join(bad[:5]), fix)]


def cloud_checks(
    provider: RouteProvider, diagnosis: DiagnosisScope, planned: Callable[[], Plan], adopting: bool
) -> list[Check]:
    """The adapter's `diagnose`, then what the plan (`planned`, as `routectl plan` computes it) says of
    the routes other writers left; an error escaping either is its ✗ line."""
    checks: list[Check] = []
    if isinstance(provider, Diagnosable):
        checks += _guarded(provider.name, "diagnose", lambda: provider.diagnose(diagnosis))
    else:
        found = f"the {provider.name} adapter has no diagnose(); its cloud setup is not checked"
        checks.append(Check(provider.name, "diagnose", CheckStatus.WARN, found, "check it by hand"))
    checks += _guarded(provider.name, "routes", lambda: route_checks(provider.name, planned(), adopting))
    return checks


def route_checks(area: str, the_plan: Plan, adopting: bool) -> list[Check]:
    """Routes another route controller made for this cluster's nodes (adoptable: they pass with
    `--adopt-routes`, else they hold their nodes back), and foreign routes on the nodes' podCIDRs."""
    adoptable = adoptable_routes(the_plan)
    theirs = f"{len(adoptable)} route(s) of another route controller"
    if not adoptable:
        adopted = Check(area, "adoptable-routes", CheckStatus.PASS, "no route of another route controller")
    elif adopting:
        found = f"{theirs}, adopted (--adopt-routes): {_few(adoptable)}"
        adopted = Check(area, "adoptable-routes", CheckStatus.PASS, found)
    else:
        found = f"{theirs} hold their nodes back: {_few(adoptable)}"
        fix = "stop that controller's route writes, then run with --adopt-routes (docs/migration.md)"
        adopted = Check(area, "adoptable-routes", CheckStatus.FAIL, found, fix)
    if not the_plan.conflicts:
        clear = Check(area, "foreign-routes", CheckStatus.PASS, "no foreign route on a node's podCIDR")
        return [adopted, clear]
    found = f"{len(the_plan.conflicts)} foreign route(s) on nodes' podCIDRs: {_few(the_plan.conflicts)}"
    fix = "routectl never touches them: remove them, or exclude the nodes (docs/routes.md)"
    return [adopted, Check(area, "foreign-routes", CheckStatus.FAIL, found, fix)]


def _few(found: Sequence[Change | RouteConflict]) -> str:
    """The first five, `destination in table (node)`."""
    return ", ".join(f"{c.destination} in {c.table} ({c.node})" for c in found[:5])


def _guarded(area: str, name: str, run: Callable[[], Sequence[Check]]) -> list[Check]:
    try:
        return list(run())
    except (ProviderError, ClusterError) as err:
        return [Check(area, name, CheckStatus.FAIL, str(err), "see the message; docs/operations.md#doctor")]


def exit_code(checks: Sequence[Check]) -> int:
    """1 when any check failed, else 0; an empty list cannot pass (nothing was proven)."""
    if not checks or any(c.status is CheckStatus.FAIL for c in checks):
        return EXIT_BROKEN
    return EXIT_HEALTHY


def line(check: Check) -> str:
    """`✗ aws/dry-run ReplaceRoute: what was found — fix: what to do`, on one line."""
    text = f"{SYMBOLS[check.status]} {check.area}/{check.name}: {_one_line(check.found)}"
    return f"{text} — fix: {_one_line(check.fix)}" if check.fix else text


def summary(checks: Sequence[Check]) -> str:
    counts = {s: sum(1 for c in checks if c.status is s) for s in CheckStatus}
    verdict = "healthy" if exit_code(checks) == EXIT_HEALTHY else "broken"
    return (
        f"{verdict}: {counts[CheckStatus.PASS]} passed, {counts[CheckStatus.FAIL]} failed, "
        f"{counts[CheckStatus.WARN]} warning(s)"
    )


def as_json(checks: Sequence[Check]) -> dict[str, object]:
    return {
        "healthy": exit_code(checks) == EXIT_HEALTHY,
        "checks": [
            {"area": c.area, "name": c.name, "status": c.status.value, "found": c.found, "fix": c.fix}
            for c in checks
        ],
        "summary": {s.value: sum(1 for c in checks if c.status is s) for s in CheckStatus},
    }


def render(checks: Sequence[Check], output: str, out: TextIO) -> int:
    """Print the checks (`table` or `json`) and return the exit code."""
    if output == "json":
        out.write(json.dumps(as_json(checks), indent=2, sort_keys=True) + "\n")
    else:
        for check in checks:
            out.write(line(check) + "\n")
        out.write(summary(checks) + "\n")
    return exit_code(checks)


def _one_line(text: str) -> str:
    return " ".join(text.split())
