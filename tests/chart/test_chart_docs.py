"""What an operator reads about the chart holds: every value is in the chart README with its default,
NOTES and Chart.yaml point at pages that exist, under the project URL the package itself names."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from chartlib import CHART, REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Source"]


def _leaves(values: Any, schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every value the schema declares by name (a free-form map such as `resources` is one value)."""
    if isinstance(values, dict) and "properties" in schema:
        for key, value in values.items():
            yield from _leaves(value, schema["properties"].get(key, {}), f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), values


def _documented() -> dict[str, str]:
    """README table: value -> its default as written."""
    rows = re.findall(r"^\| `([^`]+)` \| `(.*)` \| .* \|$", (CHART / "README.md").read_text(), re.MULTILINE)
    return dict(rows)


def test_the_readme_lists_every_value_with_its_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    declared = dict(_leaves(values, schema))
    documented = _documented()
    assert sorted(documented) == sorted(declared)
    for key, default in declared.items():
        assert json.loads(documented[key]) == default, key


def test_every_value_has_a_description_in_values_yaml() -> None:
    """The README's descriptions come from the `# --` comments; a value without one is undocumented."""
    rows = re.findall(r"^\| `([^`]+)` \| `.*` \| (.*) \|$", (CHART / "README.md").read_text(), re.MULTILINE)
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
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "{{ $docs }}/{{ .Values.provider }}.md" in notes
    for provider in ("aws", "gcp", "alibaba"):
        assert (REPO / "docs" / f"{provider}.md").is_file()


def test_the_changelog_has_a_section_for_the_charts_app_version() -> None:
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert f"## [{version}]" in (REPO / "CHANGELOG.md").read_text()
