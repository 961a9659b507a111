"""What an operator reads about the chart holds: every value is in the chart README with its default,
NOTES and Chart.yaml point at pages that exist, under the project URL the package itself names."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from typing import Any

import pytest
import yaml
from chartlib import CHART, REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Source"]


def _table_script() -> Any:
    """scripts/chart-values-table.py, loaded as a module."""
    path = REPO / "scripts" / "chart-values-table.py"
    spec = importlib.util.spec_from_file_location("chart_values_table", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_table() -> str:
    text = (CHART / "README.md").read_text()
    return text[text.index("| Key | Default | Description |") :]


def test_the_readme_lists_every_value_with_its_default_and_description() -> None:
    """The table is what `scripts/chart-values-table.py` writes from values.yaml; run it after a change."""
    script = _table_script()
    assert _readme_table() == script.table()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    listed = re.findall(r"^\| `([^`]+)` \|", _readme_table(), re.MULTILINE)
    assert listed == [key for key, _ in script.leaves(values, schema)]
    assert "replicaCount" in listed
    assert "workloadIdentity.aws.roleARN" in listed


def test_every_value_has_a_description_in_values_yaml() -> None:
    """The README's descriptions come from the `# --` comments; a value without one is undocumented."""
    rows = re.findall(r"^\| `([^`]+)` \| `.*` \| (.*) \|$", _readme_table(), re.MULTILINE)
    assert rows
    assert [key for key, description in rows if not description.strip()] == []


def test_chart_home_and_sources_are_the_projects() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["home"] == PROJECT
    assert chart["sources"] == [PROJECT]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links() -> list[str]:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    (base,) = re.findall(r'\$docs := "([^"]+)"', notes)
    links = [base + rest for rest in re.findall(r"\{\{ \$docs \}\}(/[\w.#-]+)", notes)]
    return links + re.findall(r"\]\((https://github\.com/[^)]+)\)", (CHART / "README.md").read_text())


@pytest.mark.parametrize("link", _links())
def test_links_in_notes_and_readme_name_pages_and_headings_that_exist(link: str) -> None:
    prefix = f"{PROJECT}/blob/main/"
    if link == PROJECT:
        return
    assert link.startswith(prefix), link
    path, _, anchor = link.removeprefix(prefix).partition("#")
    page = REPO / path
    assert page.is_file(), link
    if anchor:
        headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
        assert anchor in {_anchor(h) for h in headings}, link


def test_the_notes_link_a_page_for_every_provider() -> None:
    """A built-in provider's own page; for any other, the page on providers from other distributions."""
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    (pages,) = re.findall(
        r'\$providerPage := has \.Values\.provider \(list ([^)]*)\) \| ternary \S+ "(\w+)"', notes
    )
    assert "{{ $docs }}/{{ $providerPage }}.md" in notes
    for page in (*re.findall(r'"(\w+)"', pages[0]), pages[1]):
        assert (REPO / "docs" / f"{page}.md").is_file(), page


def test_the_changelog_has_a_section_for_the_charts_app_version() -> None:
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert f"## [{version}]" in (REPO / "CHANGELOG.md").read_text()
