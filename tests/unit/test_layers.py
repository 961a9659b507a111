"""The import rules of docs/architecture.md ("Layers"), read from the source with `ast`.

A rule broken anywhere fails here with the file, line and import, so a layer cannot quietly leak into
another one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("routectl", "providers", "ipam")
CLOUD_SDKS = ("boto3", "botocore", "google", "alibabacloud_", "Tea", "darabonba", "moto")


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    """The importing module, dotted (`routectl.engine.planner`)."""
    target: str
    """The imported module, dotted; `from a import b` yields `a.b` as well as `a`."""
    line: int
    lazy: bool
    """Inside a function body: imported only when that function runs."""
    typing_only: bool = False
    """Under `if TYPE_CHECKING:`: for the type checker, never imported at run time."""

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    lazy_nodes = {
        id(inner)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(fn)
    }
    typing_nodes = {
        id(inner)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for inner in ast.walk(statement)
    }
    for node in ast.walk(tree):
        lazy, typing_only = id(node) in lazy_nodes, id(node) in typing_nodes
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, lazy, typing_only)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield Import(module, node.module, node.lineno, lazy, typing_only)
            for alias in node.names:
                yield Import(module, f"{node.module}.{alias.name}", node.lineno, lazy, typing_only)


def _all_imports() -> list[Import]:
    return [imp for pkg in PRODUCT for path in sorted((ROOT / pkg).rglob("*.py")) for imp in _imports(path)]


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _starts(name: str, *roots: str) -> bool:
    return any(name == r or name.startswith(r if r.endswith("_") else r + ".") for r in roots)


IMPORTS = _all_imports()


def test_the_scan_sees_every_layer() -> None:
    """Guards the rules below against passing vacuously (a moved tree, a broken scan)."""
    modules = {imp.module for imp in IMPORTS}
    for layer in ("routectl.kube", "routectl.engine", "routectl.ops", "routectl.demo", "providers.emulators"):
        assert any(_within(m, layer) for m in modules), layer
    assert any(_within(i.target, "routectl.engine") and _within(i.module, "routectl.ops") for i in IMPORTS)


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        (("providers", "ipam"), ("routectl",)),
        (("ipam",), ("providers",)),
        (("routectl.engine",), ("routectl.kube", "routectl.ops", "routectl.demo", "routectl.controller")),
        (("routectl.kube",), ("routectl.engine", "routectl.ops", "routectl.demo", "routectl.controller")),
        (("routectl.ops",), ("routectl.demo", "routectl.kube")),
    ],
    ids=["adapters-and-ipam-stand-alone", "ipam-alone", "engine", "kube", "ops"],
)
def test_a_layer_imports_only_what_lies_beneath_it(
    importer: tuple[str, ...], forbidden: tuple[str, ...]
) -> None:
    broken = [str(i) for i in IMPORTS if _within(i.module, *importer) and _within(i.target, *forbidden)]
    assert broken == []


def test_product_code_never_imports_the_demo_or_the_emulators() -> None:
    """Only the demo package uses the emulators; the CLI reaches the demo command lazily, when asked."""
    broken = []
    for imp in IMPORTS:
        if _within(imp.module, "routectl.demo", "providers.emulators"):
            continue
        if not _within(imp.target, "routectl.demo", "providers.emulators"):
            continue
        if (
            imp.module == "routectl.cli"
            and imp.lazy
            and imp.target in ("routectl.demo", "routectl.demo.command")
        ):
            continue
        broken.append(str(imp))
    assert broken == []


def test_cloud_sdks_only_in_providers() -> None:
    broken = [
        str(i) for i in IMPORTS if _starts(i.target, *CLOUD_SDKS) and not _within(i.module, "providers")
    ]
    assert broken == []


def test_kubernetes_client_only_in_the_kube_layer() -> None:
    broken = [
        str(i) for i in IMPORTS if _starts(i.target, "kubernetes") and not _within(i.module, "routectl.kube")
    ]
    assert broken == []


def test_only_the_conformance_kit_imports_pytest() -> None:
    """The kit ships in `providers` but is for test runs: nothing else reaches it or pytest."""
    kit = "providers.conformance"
    broken = [
        str(i)
        for i in IMPORTS
        if not _within(i.module, kit) and (_within(i.target, kit) or _starts(i.target, "pytest", "_pytest"))
    ]
    assert broken == []
    assert any(_within(i.module, kit) and _starts(i.target, "pytest") for i in IMPORTS)
