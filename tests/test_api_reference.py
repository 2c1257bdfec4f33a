"""The API reference (docs/api.rst) documents every public function: each name of
``convlab.__all__`` appears in exactly one of its autosummary lists (which generate one page
per function), nothing else does, and every docstring carries what a reference page must
give: a formula, the dtypes, the errors and an example that runs (tests/test_doctests.py
runs them)."""

import pathlib
import re

import pytest

import convlab

API = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.rst"
# utilities with no formula to state (a context manager; a rule described in words)
NO_FORMULA = {"set_workers", "choose_method"}


def autosummary_entries(text):
    """The names listed under every ``.. autosummary::`` directive of `text`."""
    names, inside = [], False
    for line in text.splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
            continue
        if inside:
            if not line.strip() or line.strip().startswith(":"):
                continue
            if line.startswith("   "):
                names.append(line.strip())
                continue
            inside = False
    return names


def test_every_public_function_is_in_the_reference_once():
    names = autosummary_entries(API.read_text())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"listed more than once in docs/api.rst: {duplicates}"
    missing = sorted(set(convlab.__all__) - set(names))
    assert not missing, f"public functions missing from docs/api.rst: {missing}"
    unknown = sorted(set(names) - set(convlab.__all__))
    assert not unknown, f"docs/api.rst lists names that are not public: {unknown}"


def test_the_parser_sees_a_missing_name():
    text = API.read_text()
    entries = autosummary_entries(text)
    assert "conv" in entries and len(entries) == len(convlab.__all__)
    assert "conv" not in autosummary_entries(text.replace("   conv\n", "", 1))


def section(doc, title):
    match = re.search(rf"^\s*{title}\n\s*-+\n(.*?)(?=^\s*\w[\w ]*\n\s*-+\n|\Z)", doc, re.M | re.S)
    return match.group(1) if match else None


@pytest.mark.parametrize("name", convlab.__all__)
def test_reference_page_content(name):
    doc = getattr(convlab, name).__doc__
    examples = section(doc, "Examples")
    assert examples and ">>>" in examples, f"{name}: no runnable example"
    assert section(doc, "Raises"), f"{name}: no Raises section (the errors)"
    assert section(doc, "Parameters"), f"{name}: no Parameters section (the shapes)"
    if name in NO_FORMULA:
        return
    assert ".. math::" in doc, f"{name}: no formula (a .. math:: block)"
    assert re.search(r"dtype|float32|float64", doc), f"{name}: the dtypes are not stated"
