"""`routectl doctor`'s verdict and rendering: one line per check, ✓/✗/!, exit 1 only on a failure."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence

import pytest

from providers import Check, CheckStatus, DiagnosisScope, InvalidProviderID, Target, Transient
from routectl.engine.planner import Plan, WriteRules, plan
from routectl.ops import doctor
from tests.unit.builders import CLUSTER, TABLE, a_node, a_route

OK = Check("kubernetes", "api-reachable", CheckStatus.PASS, "API server v1.31.0, 3 node(s)")
BAD = Check(
    "aws", "dry-run ReplaceRoute", CheckStatus.FAIL, "ec2:ReplaceRoute denied", "allow ec2:ReplaceRoute"
)
WARN = Check("gcp", "permissions", CheckStatus.WARN, "not provable", "check by hand")


@pytest.mark.parametrize(
    ("checks", "code"),
    [([OK], 0), ([OK, WARN], 0), ([OK, BAD], 1), ([BAD, WARN], 1), ([], 1)],
    ids=["pass", "warning-passes", "failure", "failure-and-warning", "nothing-proven"],
)
def test_exit_code_is_one_exactly_when_a_check_failed(checks: list[Check], code: int) -> None:
    assert doctor.exit_code(checks) == code


def test_table_prints_one_line_per_check_with_its_symbol_and_fix() -> None:
    out = io.StringIO()
    assert doctor.render([OK, BAD, WARN], "table", out) == 1
    lines = out.getvalue().splitlines()
    assert lines == [
        "✓ kubernetes/api-reachable: API server v1.31.0, 3 node(s)",
        "✗ aws/dry-run ReplaceRoute: ec2:ReplaceRoute denied — fix: allow ec2:ReplaceRoute",
        "! gcp/permissions: not provable — fix: check by hand",
        "broken: 1 passed, 1 failed, 1 warning(s)",
    ]


def test_a_multi_line_finding_stays_on_one_line() -> None:
    check = Check("aws", "identity", CheckStatus.FAIL, "first\nsecond  line", "do\nthis")
    assert doctor.line(check) == "✗ aws/identity: first second line — fix: do this"


def test_json_carries_every_check_and_the_verdict() -> None:
    out = io.StringIO()
    assert doctor.render([OK, WARN], "json", out) == 0
    body = json.loads(out.getvalue())
    assert body["healthy"] is True
    assert body["summary"] == {"pass": 1, "fail": 0, "warn": 1}
    assert body["checks"][1] == {
        "area": "gcp",
        "name": "permissions",
        "status": "warn",
        "found": "not provable",
        "fix": "check by hand",
    }


def _parse(provider_id: str) -> Target:
    if not provider_id.startswith("aws:///"):
        raise InvalidProviderID(f"providerID {provider_id!r} is not an AWS instance")
    return Target(provider_id.rsplit("/", 1)[-1])


def test_targets_parse_provider_ids_and_fail_on_foreign_ones() -> None:
    ids = {"a": "aws:///zone/i-1", "b": "gce://p/z/vm", "c": ""}
    targets, checks = doctor.targets("aws", ids, _parse)
    assert targets == (Target("i-1"),)
    assert [c.status for c in checks] == [CheckStatus.FAIL]
    assert "b: providerID 'gce://p/z/vm'" in checks[0].found


def test_targets_of_well_formed_ids_add_no_check() -> None:
    assert doctor.targets("aws", {"a": "aws:///z/i-1"}, _parse) == ((Target("i-1"),), [])


class _Plain:
    """A provider without `diagnose` (what an older third-party adapter is)."""

    name = "plain"


class _Diagnosing(_Plain):
    def __init__(self, result: Sequence[Check] | Exception) -> None:
        self.result = result
        self.scopes: list[DiagnosisScope] = []

    def diagnose(self, scope: DiagnosisScope) -> list[Check]:
        self.scopes.append(scope)
        if isinstance(self.result, Exception):
            raise self.result
        return list(self.result)


SCOPE = DiagnosisScope((), (Target("i-1"),))


def test_an_adapter_without_diagnose_is_one_warning() -> None:
    checks = doctor.cloud_checks(_Plain(), SCOPE, Plan, adopting=False)  # type: ignore[arg-type]
    assert [(c.area, c.name, c.status) for c in checks] == [
        ("plain", "diagnose", CheckStatus.WARN),
        ("plain", "adoptable-routes", CheckStatus.PASS),
        ("plain", "foreign-routes", CheckStatus.PASS),
    ]


def test_cloud_checks_run_diagnose_then_the_route_checks_and_turn_errors_into_failures() -> None:
    provider = _Diagnosing([OK])

    def planned() -> Plan:
        raise Transient("listing failed")

    checks = doctor.cloud_checks(provider, SCOPE, planned, adopting=False)  # type: ignore[arg-type]
    assert provider.scopes == [SCOPE]
    assert checks[0] == OK
    assert [(c.name, c.status, c.found) for c in checks[1:]] == [
        ("routes", CheckStatus.FAIL, "listing failed")
    ]


def _a_plan_with_legacy_and_foreign_routes(*flags: str) -> Plan:
    legacy = dataclasses.replace(a_route("10.244.1.0/24", "i-a", owned=False), adoptable=True, cloud_id="k-1")
    foreign = a_route("10.244.2.0/24", "i-x", owned=False)
    nodes = [a_node("a", "10.244.1.0/24"), a_node("b", "10.244.2.0/24")]
    return plan(
        nodes, {TABLE: [legacy, foreign]}, CLUSTER, rules=WriteRules.chosen("--adopt-routes" in flags, "sync")
    )


def test_adoptable_routes_fail_naming_the_flag_and_foreign_routes_fail_apart() -> None:
    adoptable, foreign = doctor.route_checks("gcp", _a_plan_with_legacy_and_foreign_routes(), adopting=False)
    assert (adoptable.name, adoptable.status) == ("adoptable-routes", CheckStatus.FAIL)
    assert "1 route(s) of another route controller" in adoptable.found
    assert "10.244.1.0/24 in rtb-main (a)" in adoptable.found
    assert "--adopt-routes" in adoptable.fix
    assert (foreign.name, foreign.status) == ("foreign-routes", CheckStatus.FAIL)
    assert "10.244.2.0/24 in rtb-main (b)" in foreign.found
    assert "10.244.1.0/24" not in foreign.found


def test_with_adopt_routes_the_legacy_routes_pass_as_adopted() -> None:
    the_plan = _a_plan_with_legacy_and_foreign_routes("--adopt-routes")
    adoptable, foreign = doctor.route_checks("gcp", the_plan, adopting=True)
    assert (adoptable.status, foreign.status) == (CheckStatus.PASS, CheckStatus.FAIL)
    assert "adopted (--adopt-routes): 10.244.1.0/24 in rtb-main (a)" in adoptable.found


def test_a_diagnose_that_raises_a_provider_error_is_a_failed_line() -> None:
    checks = doctor.cloud_checks(_Diagnosing(Transient("boom")), SCOPE, Plan, False)  # type: ignore[arg-type]
    assert (checks[0].name, checks[0].status) == ("diagnose", CheckStatus.FAIL)
