"""Cloud identity the SDKs' default chains pick up (a projected ServiceAccount token plus the env or
credential file each SDK reads), and the escape hatches that spare a fork of the chart.

What the SDKs then do with exactly these renders is proven in tests/e2e/test_install_e2e.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chartlib import (
    EXAMPLES,
    Helm,
    HelmFailed,
    Manifest,
    chart_values,
    config_map,
    controller,
    one,
    pod_env,
    pod_spec,
)

TOKEN_FILE = "/var/run/secrets/cloud-identity/token"


def projected_token(objects: list[Manifest]) -> tuple[str, dict[str, Any]]:
    """(the file the token lands in, its serviceAccountToken source) — the one projected volume."""
    volumes = [v for v in pod_spec(objects)["volumes"] if "projected" in v]
    (volume,) = volumes
    (source,) = volume["projected"]["sources"]
    (mount,) = [m for m in controller(objects)["volumeMounts"] if m["name"] == volume["name"]]
    token: dict[str, Any] = source["serviceAccountToken"]
    return f"{mount['mountPath']}/{token['path']}", token


def test_aws_web_identity_needs_no_webhook(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["aws"]])
    path, token = projected_token(objects)
    env = pod_env(controller(objects))
    assert env["AWS_ROLE_ARN"] == chart_values("aws")["workloadIdentity"]["aws"]["roleARN"]
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == path == TOKEN_FILE
    assert env["AWS_ROLE_SESSION_NAME"] == env["POD_NAME"]  # CloudTrail names the pod
    assert (token["audience"], token["expirationSeconds"]) == ("sts.amazonaws.com", 3600)


def test_gcp_workload_identity_federation_is_an_external_account_file_reading_the_token(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["gcp"]])
    path, token = projected_token(objects)
    env = pod_env(controller(objects))
    wanted = chart_values("gcp")["workloadIdentity"]["gcp"]
    (mount,) = [m for m in controller(objects)["volumeMounts"] if m["name"] == "config"]
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == f"{mount['mountPath']}/gcp-credentials.json"
    assert env["GOOGLE_CLOUD_PROJECT"] == chart_values("gcp")["gcp"]["project"]
    credentials = json.loads(config_map(objects)["data"]["gcp-credentials.json"])
    assert credentials == {
        "type": "external_account",
        "audience": wanted["audience"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/"
        f"serviceAccounts/{wanted['serviceAccount']}:generateAccessToken",
        "credential_source": {"file": path, "format": {"type": "text"}},
    }
    assert token["audience"] == "https:" + wanted["audience"]  # the provider's default allowed audience


def test_gcp_federation_without_impersonation_and_through_private_endpoints(helm: Helm) -> None:
    sets = {
        "workloadIdentity.gcp.serviceAccount": "",
        "workloadIdentity.gcp.tokenURL": "https://sts-psc.p.googleapis.com/v1/token",
        "workloadIdentity.gcp.tokenAudience": "routectl",
    }
    objects = helm.template([EXAMPLES["gcp"]], sets=sets)
    credentials = json.loads(config_map(objects)["data"]["gcp-credentials.json"])
    assert "service_account_impersonation_url" not in credentials
    assert credentials["token_url"] == "https://sts-psc.p.googleapis.com/v1/token"
    assert projected_token(objects)[1]["audience"] == "routectl"


def test_gcp_without_federation_uses_the_nodes_service_account(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["gcp"]], sets={"workloadIdentity.gcp.audience": ""})
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in pod_env(controller(objects))
    assert "gcp-credentials.json" not in config_map(objects)["data"]
    assert [v for v in pod_spec(objects)["volumes"] if "projected" in v] == []


def test_alibaba_oidc_sets_the_three_variables_of_the_credentials_chain(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["alibaba"]])
    path, token = projected_token(objects)
    env = pod_env(controller(objects))
    wanted = chart_values("alibaba")["workloadIdentity"]["alibaba"]
    assert env["ALIBABA_CLOUD_ROLE_ARN"] == wanted["roleARN"]
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"] == wanted["oidcProviderARN"]
    assert env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"] == path
    assert token["audience"] == "sts.aliyuncs.com"


def test_alibaba_oidc_without_its_provider_is_refused(helm: Helm) -> None:
    with pytest.raises(HelmFailed, match="oidcProviderARN"):
        helm.template([EXAMPLES["alibaba"]], sets={"workloadIdentity.alibaba.oidcProviderARN": ""})


def test_only_the_selected_providers_identity_is_rendered(helm: Helm) -> None:
    objects = helm.template(
        [EXAMPLES["gcp"]],
        sets={
            "workloadIdentity.gcp.audience": "",
            "workloadIdentity.aws.roleARN": "arn:aws:iam::123456789012:role/x",
            "workloadIdentity.alibaba.roleARN": "acs:ram::1:role/x",
            "workloadIdentity.alibaba.oidcProviderARN": "acs:ram::1:oidc-provider/x",
        },
    )
    env = pod_env(controller(objects))
    assert not {k for k in env if k.startswith(("AWS_", "ALIBABA_", "GOOGLE_"))}
    assert [v for v in pod_spec(objects)["volumes"] if "projected" in v] == []


def test_extra_env_volumes_and_mounts_reach_the_pod(helm: Helm) -> None:
    sets = {
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
        "extraEnvFrom": [{"configMapRef": {"name": "proxy-env"}}],
        "extraVolumes": [{"name": "ca", "configMap": {"name": "corporate-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": True}],
    }
    objects = helm.template([EXAMPLES["aws"]], sets=sets)
    container = controller(objects)
    assert pod_env(container)["HTTPS_PROXY"] == "http://proxy:3128"
    assert container["env"][-1] == sets["extraEnv"][0]  # last: it may override what the chart sets
    assert container["envFrom"] == sets["extraEnvFrom"]
    assert sets["extraVolumes"][0] in pod_spec(objects)["volumes"]
    assert sets["extraVolumeMounts"][0] in container["volumeMounts"]


def test_pod_annotations_and_labels_join_the_charts_own(helm: Helm) -> None:
    objects = helm.template(
        [EXAMPLES["aws"]], sets={"podAnnotations": {"team": "net"}, "podLabels": {"tier": "infra"}}
    )
    meta = one(objects, "Deployment")["spec"]["template"]["metadata"]
    assert meta["annotations"]["team"] == "net"
    assert "checksum/config" in meta["annotations"]
    assert meta["labels"]["tier"] == "infra"
    assert meta["labels"]["app.kubernetes.io/name"] == "routectl"


def test_replicas_spread_over_zones_by_default_and_the_spread_can_be_replaced(helm: Helm) -> None:
    (spread,) = pod_spec(helm.template([EXAMPLES["aws"]]))["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert (
        spread["labelSelector"]["matchLabels"]
        == one(helm.template([EXAMPLES["aws"]]), "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert "topologySpreadConstraints" not in pod_spec(helm.template([EXAMPLES["alibaba"]]))  # one replica
    own = [{"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}]
    assert (
        pod_spec(helm.template([EXAMPLES["aws"]], sets={"topologySpreadConstraints": own}))[
            "topologySpreadConstraints"
        ]
        == own
    )


def test_affinity_replaces_the_default_anti_affinity(helm: Helm) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "role", "operator": "In", "values": ["infra"]}]}
                ]
            }
        }
    }
    assert pod_spec(helm.template([EXAMPLES["aws"]], sets={"affinity": affinity}))["affinity"] == affinity


def test_node_selector_grace_period_and_image_digest(helm: Helm) -> None:
    digest = "sha256:" + "ab" * 32
    objects = helm.template(
        [EXAMPLES["aws"]],
        sets={
            "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
            "image.digest": digest,
            "terminationGracePeriodSeconds": 45,
        },
    )
    spec = pod_spec(objects)
    assert spec["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert spec["terminationGracePeriodSeconds"] == 45
    assert controller(objects)["image"] == f"ghcr.io/routectl/routectl@{digest}"
    assert controller(helm.template([EXAMPLES["aws"]]))["image"] == "ghcr.io/routectl/routectl:0.1.0"
