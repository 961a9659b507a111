"""Every distribution the product code imports is declared in pyproject.toml, in the part that installs it.

Module-level and lazy imports alike (a lazy one runs when its feature is used): the cloud adapters'
(providers/aws.py, gcp.py, alibaba.py) must come with that cloud's extra, the emulators' (the demo's clouds)
with the demo extra, the conformance kit's with the conformance extra, every other with the core
dependencies. Imports under `if TYPE_CHECKING:` serve mypy only. Which distribution provides a module is
read from this environment, which has every extra installed.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.test_layers import IMPORTS, PRODUCT, ROOT, Import

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRA_OF = {"providers.aws": "aws", "providers.gcp": "gcp", "providers.alibaba": "alibaba"}
EXTRA_OF["providers.emulators"] = "demo"
EXTRA_OF["providers.conformance"] = "conformance"
DISTRIBUTIONS = metadata.packages_distributions()


def _extra(module: str) -> str | None:
    """The extra that must install what `module` imports; None for the core dependencies."""
    for prefix, extra in EXTRA_OF.items():
        if module == prefix or module.startswith(prefix + "."):
            return extra
    return None


def declared(extra: str | None) -> frozenset[str]:
    """The distributions the core dependencies and `extra` name, following `routectl[...]` references."""
    extras = PROJECT["optional-dependencies"]
    pending = [*PROJECT["dependencies"], *(extras[extra] if extra else ())]
    names: set[str] = set()
    while pending:
        requirement = Requirement(pending.pop())
        if canonicalize_name(requirement.name) == "routectl":
            pending += [r for name in requirement.extras for r in extras[name]]
        else:
            names.add(canonicalize_name(requirement.name))
    return frozenset(names)


def providers_of(target: str) -> set[str]:
    """The installed distributions that provide `target` (a module, or a name in one); for a namespace
    package (`google.cloud`) the ones with files under that path."""
    top = target.partition(".")[0]
    candidates = set(DISTRIBUTIONS.get(top, ()))
    path = target.replace(".", "/")
    precise = {
        name
        for name in candidates
        if any(str(f).startswith(f"{path}/") or str(f) == f"{path}.py" for f in metadata.files(name) or ())
    }
    return {canonicalize_name(name) for name in precise or candidates}


def third_party(imp: Import) -> bool:
    top = imp.target.partition(".")[0]
    return not imp.typing_only and top not in sys.stdlib_module_names and top not in (*PRODUCT, "__future__")


THIRD_PARTY = [imp for imp in IMPORTS if third_party(imp)]


def test_the_scan_sees_the_core_every_cloud_sdk_and_the_demo() -> None:
    """Guards the check below against passing vacuously."""
    seen = {(_extra(imp.module), dist) for imp in THIRD_PARTY for dist in providers_of(imp.target)}
    for expected in [(None, "kubernetes"), ("aws", "boto3"), ("gcp", "google-cloud-compute")]:
        assert expected in seen
    assert ("alibaba", "alibabacloud-vpc20160428") in seen
    assert ("demo", "moto") in seen


@pytest.mark.parametrize("imp", THIRD_PARTY, ids=str)
def test_every_imported_distribution_is_declared_where_it_is_needed(imp: Import) -> None:
    found = providers_of(imp.target)
    assert found, f"{imp}: no installed distribution provides it"
    extra = _extra(imp.module)
    assert found & declared(extra), f"{imp}: {sorted(found)} not declared for {extra or 'the core'}"
