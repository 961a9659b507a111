"""values.schema.json refuses bad input with helm's schema error, before anything is rendered."""

from __future__ import annotations

import pytest
from chartlib import EXAMPLES, Helm, HelmFailed

SCHEMA_ERROR = "values don't meet the specifications of the schema"


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("clusterCIDRs", ["10.0.0.0/33"], "at '/clusterCIDRs/0'"),
        ("clusterCIDRs", ["10.244.0.0"], "at '/clusterCIDRs/0'"),
        ("clusterCIDRs", ["banana"], "at '/clusterCIDRs/0'"),
        ("clusterCIDRs", ["fd00::/129"], "at '/clusterCIDRs/0'"),
        ("clusterCIDRs", "10.244.0.0/16", "at '/clusterCIDRs': got string, want array"),
        ("clusterCIDRs", [], "at '/clusterCIDRs': minItems"),
        ("clusterCIDRs", None, "missing property 'clusterCIDRs'"),
        ("ipam.reservedCIDRs", ["10.1.0.0"], "at '/ipam/reservedCIDRs/0'"),
        ("clusterName", None, "missing property 'clusterName'"),
        ("clusterName", "", "at '/clusterName'"),
        ("clusterName", "Prod_1", "at '/clusterName'"),
        ("replicaCount", 0, "at '/replicaCount': minimum"),
        ("provider", "Azure!", "at '/provider'"),
        ("providerSettings", {"--zone": "z"}, "invalid propertyName '--zone'"),
        ("providerSettings", {"zone": {"a": 1}}, "at '/providerSettings/zone'"),
        ("provider", "", "at '/provider': minLength"),
        ("provider", "gcp", "at '/gcp/project': minLength"),
        ("provider", "alibaba", "at '/alibaba/region': minLength"),
        ("aws.region", "", "at '/aws/region': minLength"),
        ("leaderElection.enabled", False, "at '/replicaCount': maximum"),
        ("routes.reconciliationPeriod", "1min", "at '/routes/reconciliationPeriod'"),
        ("logLevel", "trace", "at '/logLevel': value must be one of"),
        ("ipam.nodeCIDRMaskSizeIPv4", 33, "at '/ipam/nodeCIDRMaskSizeIPv4': maximum"),
        ("ipam.excludeLabel", "no-value", "at '/ipam/excludeLabel'"),
        ("routes.concurrentNodeSyncs", 0, "at '/routes/concurrentNodeSyncs': minimum"),
        ("routes.policy", "delete-all", "at '/routes/policy': value must be one of"),
        ("routes.adoptRoutes", "yes", "at '/routes/adoptRoutes'"),
        ("clusterNmae", "typo", "additional properties 'clusterNmae' not allowed"),
    ],
)
def test_schema_rejects_bad_value(helm: Helm, key: str, value: object, complaint: str) -> None:
    with pytest.raises(HelmFailed) as failure:
        helm.template([EXAMPLES["aws"]], sets={key: value})
    assert SCHEMA_ERROR in str(failure.value)
    assert complaint in str(failure.value)


def test_install_without_cluster_settings_is_refused(helm: Helm) -> None:
    with pytest.raises(HelmFailed, match="at '/clusterName'"):
        helm.template()


def test_configure_cloud_routes_off_needs_no_provider(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["aws"]], sets={"provider": "", "routes.configureCloudRoutes": False})
    assert any(o["kind"] == "Deployment" for o in objects)
