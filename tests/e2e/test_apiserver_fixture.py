"""The e2e control plane works, and the real API server behaves the way routectl relies on.

Each test states one server behaviour: podCIDR immutability and patch preconditions, the nodes/status
subresource, Lease conflicts, watch bookmarks, 410 Gone after compaction, RBAC enforcement. Objects are
read back as the API's own JSON (`podCIDR`, not the client's `pod_cidr`), as routectl sees them.
"""

from __future__ import annotations

import datetime
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.support.apiserver import ControlPlane
from tests.support.binaries import Binaries

Json = dict[str, Any]


def a_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def a_node(name: str) -> client.V1Node:
    return client.V1Node.model_validate({"metadata": {"name": name}})


@pytest.fixture
def core(admin_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(admin_api)


@pytest.fixture
def node(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh Node without a podCIDR; deleted afterwards."""
    name = a_name("node")
    core.create_node(a_node(name))
    yield name
    core.delete_node(name)


def as_json(api: client.CoreV1Api | client.CoordinationV1Api, obj: object) -> Json:
    """A client model as the API server's JSON."""
    serialized: Json = api.api_client.sanitize_for_serialization(obj)
    return serialized


def node_json(core: client.CoreV1Api, name: str) -> Json:
    return as_json(core, core.read_node(name))


def pod_cidrs_of(core: client.CoreV1Api, name: str) -> tuple[str | None, list[str] | None]:
    spec = node_json(core, name)["spec"]
    return spec.get("podCIDR"), spec.get("podCIDRs")


def list_version(core: client.CoreV1Api) -> str:
    version: str = as_json(core, core.list_node())["metadata"]["resourceVersion"]
    return version


def cidr_patch(cidr: str) -> Json:
    """The strategic-merge patch kube-controller-manager's allocator sends."""
    return {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}


def rejected(call: Callable[..., object], *args: Any, **kwargs: Any) -> ApiException:
    with pytest.raises(ApiException) as excinfo:
        call(*args, **kwargs)
    return excinfo.value


def watch_events(list_call: Callable[..., object], **kwargs: Any) -> list[Json]:
    """Every event of one watch, which must end by itself (pass `timeout_seconds`)."""
    events = watch.Watch().stream(list_call, _request_timeout=30, **kwargs)  # type: ignore[no-untyped-call]
    return list(events)


def bookmarks_of(events: list[Json]) -> list[Json]:
    """Raw BOOKMARK objects (the client leaves them undecoded)."""
    return [event["raw_object"] for event in events if event["type"] == "BOOKMARK"]


def client_from_kubeconfig(path: Path) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(path))  # type: ignore[no-untyped-call]
    return api


def test_control_plane_serves_the_pinned_kubernetes_version(
    admin_api: client.ApiClient, e2e_binaries: Binaries
) -> None:
    assert client.VersionApi(admin_api).get_code().git_version == e2e_binaries.kubernetes_version


def test_pod_cidr_can_be_set_on_a_node_that_has_none(core: client.CoreV1Api, node: str) -> None:
    core.patch_node(node, cidr_patch("10.244.1.0/24"))

    assert pod_cidrs_of(core, node) == ("10.244.1.0/24", ["10.244.1.0/24"])


def test_changing_an_existing_pod_cidr_is_refused_with_422(core: client.CoreV1Api, node: str) -> None:
    core.patch_node(node, cidr_patch("10.244.2.0/24"))

    error = rejected(core.patch_node, node, cidr_patch("10.244.3.0/24"))

    assert error.status == 422
    assert pod_cidrs_of(core, node) == ("10.244.2.0/24", ["10.244.2.0/24"])


def test_merge_patch_cannot_change_an_existing_pod_cidr_either(core: client.CoreV1Api, node: str) -> None:
    merge = "application/merge-patch+json"
    core.patch_node(node, cidr_patch("10.244.8.0/24"), _content_type=merge)

    error = rejected(core.patch_node, node, cidr_patch("10.244.9.0/24"), _content_type=merge)

    assert error.status == 422
    assert pod_cidrs_of(core, node) == ("10.244.8.0/24", ["10.244.8.0/24"])


def test_setting_the_same_pod_cidr_again_is_a_no_op(core: client.CoreV1Api, node: str) -> None:
    core.patch_node(node, cidr_patch("10.244.4.0/24"))

    core.patch_node(node, cidr_patch("10.244.4.0/24"))

    assert pod_cidrs_of(core, node) == ("10.244.4.0/24", ["10.244.4.0/24"])


def test_json_patch_test_op_for_absent_pod_cidr_guards_the_write(core: client.CoreV1Api, node: str) -> None:
    """`test` with value null passes only while podCIDR is absent. The second, identical patch would
    be a no-op without the guard, so its 422 comes from the failed `test`, not from immutability."""
    guarded: list[Json] = [
        {"op": "test", "path": "/spec/podCIDR", "value": None},
        {"op": "add", "path": "/spec/podCIDR", "value": "10.244.5.0/24"},
        {"op": "add", "path": "/spec/podCIDRs", "value": ["10.244.5.0/24"]},
    ]
    core.patch_node(node, guarded)
    assert pod_cidrs_of(core, node) == ("10.244.5.0/24", ["10.244.5.0/24"])

    error = rejected(core.patch_node, node, guarded)

    assert error.status == 422


def test_json_patch_test_op_for_empty_string_pod_cidr_fails_even_when_absent(
    core: client.CoreV1Api, node: str
) -> None:
    """The server omits an empty podCIDR, so `test ""` cannot express "not yet allocated"."""
    guarded: list[Json] = [
        {"op": "test", "path": "/spec/podCIDR", "value": ""},
        {"op": "add", "path": "/spec/podCIDR", "value": "10.244.6.0/24"},
    ]

    error = rejected(core.patch_node, node, guarded)

    assert error.status == 422
    assert pod_cidrs_of(core, node) == (None, None)


def test_patch_carrying_a_stale_resource_version_conflicts_409(core: client.CoreV1Api, node: str) -> None:
    stale = node_json(core, node)["metadata"]["resourceVersion"]
    core.patch_node(node, {"metadata": {"labels": {"touched": "yes"}}})

    error = rejected(
        core.patch_node, node, {"metadata": {"resourceVersion": stale}, **cidr_patch("10.244.7.0/24")}
    )

    assert error.status == 409
    assert pod_cidrs_of(core, node) == (None, None)


def network_condition(status: str, reason: str) -> Json:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "NetworkUnavailable",
        "status": status,
        "reason": reason,
        "message": "set by the e2e tier",
        "lastTransitionTime": now,
        "lastHeartbeatTime": now,
    }


def conditions_of(core: client.CoreV1Api, node: str) -> dict[str, tuple[str, str]]:
    conditions = node_json(core, node).get("status", {}).get("conditions", [])
    return {c["type"]: (c["status"], c.get("reason", "")) for c in conditions}


def test_network_unavailable_condition_is_set_through_the_status_subresource(
    core: client.CoreV1Api, node: str
) -> None:
    core.patch_node_status(node, {"status": {"conditions": [network_condition("False", "RouteCreated")]}})

    assert conditions_of(core, node)["NetworkUnavailable"] == ("False", "RouteCreated")


def test_status_in_a_patch_of_the_node_itself_is_ignored(core: client.CoreV1Api, node: str) -> None:
    core.patch_node(node, {"status": {"conditions": [network_condition("False", "RouteCreated")]}})

    assert "NetworkUnavailable" not in conditions_of(core, node)


def test_lease_update_with_stale_resource_version_conflicts_409(admin_api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(admin_api)
    name = a_name("lease")
    lease: Json = {"metadata": {"name": name}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    created = leases.create_namespaced_lease("default", client.V1Lease.model_validate(lease))
    lease["metadata"] = as_json(leases, created)["metadata"]
    lease["spec"]["holderIdentity"] = "b"
    leases.replace_namespaced_lease(name, "default", client.V1Lease.model_validate(lease))
    lease["spec"]["holderIdentity"] = "c"  # still carrying the creation resourceVersion, now stale

    error = rejected(leases.replace_namespaced_lease, name, "default", client.V1Lease.model_validate(lease))

    holder = as_json(leases, leases.read_namespaced_lease(name, "default"))["spec"]["holderIdentity"]
    leases.delete_namespaced_lease(name, "default")
    assert error.status == 409
    assert holder == "b"


def test_watch_list_ends_its_initial_events_with_an_annotated_bookmark(
    core: client.CoreV1Api, node: str, e2e_binaries: Binaries
) -> None:
    if e2e_binaries.etcd_is_debian_fallback:
        pytest.skip("watch-list needs etcd >= 3.5 (RequestWatchProgress); the Debian fallback is 3.4")
    events = watch_events(
        core.list_node,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
        timeout_seconds=2,
    )

    bookmarks = bookmarks_of(events)

    assert [b["metadata"]["annotations"] for b in bookmarks] == [{"k8s.io/initial-events-end": "true"}]
    assert node in [e["raw_object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]


def test_filtered_watch_gets_a_bookmark_when_the_resource_version_moves_on_during_it(
    core: client.CoreV1Api, node: str
) -> None:
    """The watch cache bookmarks a watcher shortly before its deadline (here ~2 s in), and only with a
    resourceVersion newer than anything the watcher saw: a change outside its selector, mid-watch."""
    other = a_name("node")
    start = list_version(core)
    change = threading.Timer(0.5, core.create_node, [a_node(other)])
    change.start()

    events = watch_events(
        core.list_node,
        field_selector=f"metadata.name={node}",
        resource_version=start,
        allow_watch_bookmarks=True,
        timeout_seconds=4,
    )

    change.join()
    moved_on = node_json(core, other)["metadata"]["resourceVersion"]
    core.delete_node(other)
    versions = [b["metadata"]["resourceVersion"] for b in bookmarks_of(events)]
    # The server may repeat a bookmark (a periodic one and the one before the deadline): every one of
    # them must carry the version the watcher never saw an event for, and at least one must come.
    assert versions
    assert set(versions) == {moved_on}


def test_watch_from_a_compacted_resource_version_gets_410_gone(
    control_plane_without_watch_cache: ControlPlane,
) -> None:
    """Without the watch cache the watch reaches etcd; a watch from `old` needs revision old+1,
    so two writes before compacting put it behind the compaction."""
    plane = control_plane_without_watch_cache
    names = [a_name("node"), a_name("node")]
    with plane.admin_api_client() as api:
        core = client.CoreV1Api(api)
        old = list_version(core)
        for name in names:
            core.create_node(a_node(name))
        plane.compact_etcd()

        error = rejected(watch_events, core.list_node, resource_version=old, timeout_seconds=5)

        for name in names:
            core.delete_node(name)
    assert error.status == 410


def test_service_account_without_rbac_is_forbidden_to_list_nodes(
    control_plane: ControlPlane, core: client.CoreV1Api, tmp_path: Path
) -> None:
    name = a_name("nobody")
    core.create_namespaced_service_account(
        "default", client.V1ServiceAccount.model_validate({"metadata": {"name": name}})
    )
    token = control_plane.service_account_token("default", name)
    kubeconfig = control_plane.kubeconfig_for_token(token, tmp_path / "kubeconfig")

    with client_from_kubeconfig(kubeconfig) as api:
        error = rejected(client.CoreV1Api(api).list_node)

    assert error.status == 403


def node_reader_rbac(namespace: str, name: str) -> list[Json]:
    meta = {"name": name}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {**meta, "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def test_applied_rbac_lets_the_service_account_do_exactly_what_it_grants(
    control_plane: ControlPlane, node: str, tmp_path: Path
) -> None:
    namespace, name = a_name("ns"), a_name("reader")
    manifests = node_reader_rbac(namespace, name)
    control_plane.apply_manifests(manifests)
    control_plane.apply_manifests(manifests)  # idempotent: applying again is not an error
    token = control_plane.service_account_token(namespace, name)
    kubeconfig = control_plane.kubeconfig_for_token(token, tmp_path / "kubeconfig")

    with client_from_kubeconfig(kubeconfig) as api:
        reader = client.CoreV1Api(api)
        listed = [item["metadata"]["name"] for item in as_json(reader, reader.list_node())["items"]]
        error = rejected(reader.list_namespaced_service_account, namespace)

    assert node in listed
    assert error.status == 403


def test_control_plane_leaves_no_process_or_directory_behind(e2e_binaries: Binaries) -> None:
    with ControlPlane(e2e_binaries) as plane:
        pids, workdir = plane.pids, plane.workdir
        assert [pid for pid in pids if _alive(pid)] == list(pids)

    assert [pid for pid in pids if _alive(pid)] == []
    assert not workdir.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
