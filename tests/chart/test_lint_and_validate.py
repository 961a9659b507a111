"""Every example values file lints strictly and renders objects valid for each supported Kubernetes."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml
from chartlib import CHART, EXAMPLES, Helm, HelmFailed
from kubernetes_validate import utils as kv_utils

# prometheus-operator CRDs: kubernetes-validate ships no schema for them (checked in test_monitoring).
CRD_GROUPS = ("monitoring.coreos.com/",)


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _chart_minimum() -> tuple[int, int]:
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    found = re.fullmatch(r">=\s*(\d+)\.(\d+)\.\d+(-0)?", constraint)
    assert found, f"kubeVersion {constraint!r}: expected an open range '>=X.Y.Z-0'"
    return int(found.group(1)), int(found.group(2))


SHIPPED = sorted(set(kv_utils.all_versions()), key=_minor)
IN_RANGE = [v for v in SHIPPED if _minor(v) >= _chart_minimum()]


def test_each_example_passes_strict_lint(helm: Helm, example: str) -> None:
    assert "1 chart(s) linted, 0 chart(s) failed" in helm.lint(EXAMPLES[example])


def test_kubernetes_validate_ships_versions_in_the_charts_range() -> None:
    assert IN_RANGE, f"kubernetes-validate ships {SHIPPED}, none in the chart's kubeVersion range"


@pytest.mark.parametrize("version", [v for v in SHIPPED if v not in IN_RANGE])
def test_chart_refuses_kubernetes_below_its_range(helm: Helm, version: str) -> None:
    with pytest.raises(HelmFailed, match="incompatible with Kubernetes"):
        helm.template([EXAMPLES["aws"]], kube_version=version)


@pytest.mark.parametrize("version", IN_RANGE)
def test_rendered_objects_validate_strictly_for_each_kubernetes_in_range(
    helm: Helm, example: str, version: str
) -> None:
    objects = helm.template([EXAMPLES[example]], kube_version=version)
    checked = [o for o in objects if not o["apiVersion"].startswith(CRD_GROUPS)]
    assert checked
    for obj in checked:
        kubernetes_validate.validate(obj, version, strict=True)
