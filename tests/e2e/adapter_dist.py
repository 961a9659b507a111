"""Build and install a provider adapter's own distribution the way an operator would, offline.

`pip wheel` without build isolation (the setuptools of the venv running the tests, no `wheel` package
needed), then `pip install --target`: the result is a directory to put on a routectl process's
PYTHONPATH, which is all it takes for importlib.metadata to find the adapter's entry point. `--no-index`
everywhere: nothing is fetched. The source is copied first, so build output never lands in the repo.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

MEMCLOUD = Path(__file__).with_name("memcloud")
"""The example out-of-tree adapter: pyproject.toml (entry point `routectl.providers`) and one module."""
_TIMEOUT_S = 180


def build_and_install(source: Path, workdir: Path) -> Path:
    """The `--target` directory the distribution at `source` is installed into."""
    src, wheels, site = workdir / "src", workdir / "wheels", workdir / "site"
    shutil.copytree(source, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(
        [
            *pip,
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--wheel-dir",
            str(wheels),
            str(src),
        ]
    )
    (wheel,) = wheels.glob("*.whl")
    _run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)])
    return site


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv[3:5])} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
