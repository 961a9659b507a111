"""Run the images scripts/image.sh built, through the Docker client of its private daemon, the way the
chart's Pod would run them.

Invariant: every container a test starts is named, and `Docker.remove` (called in the fixture's teardown)
deletes it whatever happened; scripts/image.sh stops the daemon itself when the tier ends.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.chart.chartlib import Manifest, controller, pod_spec

TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Completed:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class Docker:
    """The Docker client (`client`), talking to the daemon named by DOCKER_HOST."""

    client: str

    def _call(self, *args: str, timeout_s: float = TIMEOUT_S) -> Completed:
        done = subprocess.run(
            [self.client, *args], capture_output=True, text=True, timeout=timeout_s, check=False
        )
        return Completed(done.returncode, done.stdout, done.stderr)

    def run(self, image: str, *args: str, options: Sequence[str] = ()) -> Completed:
        """`docker run --rm` to completion: the container's exit code, stdout and stderr."""
        return self._call("run", "--rm", *options, image, *args)

    def start(self, name: str, image: str, args: Sequence[str], options: Sequence[str]) -> None:
        done = self._call("run", "--detach", f"--name={name}", *options, image, *args)
        assert done.code == 0, f"docker run {name}: {done.stderr.strip()}"

    def logs(self, name: str) -> str:
        """What the container wrote to stdout and stderr (routectl logs JSON lines to stderr)."""
        done = self._call("logs", name)
        return done.stdout + done.stderr

    def stop(self, name: str, grace_s: int) -> int:
        """SIGTERM, SIGKILL after `grace_s`; the container's exit code."""
        self._call("stop", f"--time={grace_s}", name, timeout_s=grace_s + TIMEOUT_S)
        return int(self._call("inspect", "--format={{.State.ExitCode}}", name).stdout.strip())

    def remove(self, name: str) -> None:
        self._call("rm", "--force", "--volumes", name)

    def image(self, image: str) -> dict[str, Any]:
        done = self._call("image", "inspect", image)
        assert done.code == 0, done.stderr
        (found,) = json.loads(done.stdout)
        return dict(found)


@dataclass(frozen=True, slots=True)
class Images:
    """What scripts/image.sh built, and the client that reaches its daemon."""

    docker: Docker
    every_cloud: str
    """routectl:VERSION, built with CLOUDS=aws,gcp,alibaba."""
    aws_only: str
    """routectl:VERSION-aws, built with CLOUDS=aws."""


def security_options(objects: Sequence[Manifest]) -> list[str]:
    """`docker run` options for the rendered Deployment's container security: its uid and gid, read-only
    root, dropped capabilities, no privilege escalation, and a tmpfs for each mounted emptyDir."""
    context = controller(objects)["securityContext"]
    volumes = {volume["name"]: volume for volume in pod_spec(objects)["volumes"]}
    options = [f"--user={context['runAsUser']}:{context['runAsGroup']}"]
    if context["readOnlyRootFilesystem"]:
        options.append("--read-only")
    options += [f"--cap-drop={capability}" for capability in context["capabilities"]["drop"]]
    if not context["allowPrivilegeEscalation"]:
        options.append("--security-opt=no-new-privileges")
    for mount in controller(objects)["volumeMounts"]:
        if "emptyDir" in volumes[mount["name"]]:
            options.append(f"--tmpfs={mount['mountPath']}")
    return options


def volume_options(objects: Sequence[Manifest], directories: Mapping[str, Path]) -> list[str]:
    """`--volume` options mounting, at the container's mount paths, the directory laid out for each of
    its volumes that is not an emptyDir (by volume name)."""
    volumes = {volume["name"]: volume for volume in pod_spec(objects)["volumes"]}
    options = []
    for mount in controller(objects)["volumeMounts"]:
        if "emptyDir" in volumes[mount["name"]]:
            continue
        mode = "ro" if mount.get("readOnly") else "rw"
        options.append(f"--volume={readable(directories[mount['name']])}:{mount['mountPath']}:{mode}")
    return options


def readable(directory: Path) -> Path:
    """`directory`, its subdirectories and files made readable by any uid (the image's is 65532)."""
    for path in (directory, *directory.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def env_options(env: Mapping[str, str]) -> list[str]:
    return [f"--env={name}={value}" for name, value in sorted(env.items())]


def a_kubeconfig(path: Path, server: str = "https://127.0.0.1:9") -> Path:
    """A kubeconfig that loads (nothing listens at `server`): enough for a command that must fail on
    its configuration before it reaches the cluster. World-readable, for the image's non-root uid."""
    cluster = {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "u", "user": {"token": "not-a-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o644)
    return path


def one_line(text: str) -> str:
    """The only line of `text`; fails when there are more (a traceback, say) or none."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]
