"""Meta-test: every hook in dashfleet_core.hookspecs is documented in docs/plugin-hooks.md (a
`## <name>` section with its signature) and has a test named `test_hook_<name>` under tests/."""

from __future__ import annotations

import inspect
import re

import pytest

from conftest import REPO
from dashfleet_core import hookspecs

DOC = REPO / "docs" / "plugin-hooks.md"


def hook_names() -> list[str]:
    return sorted(name for name, obj in vars(hookspecs).items()
                  if inspect.isfunction(obj) and hasattr(obj, f"{hookspecs.PROJECT}_spec"))


def doc_sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## +`?([a-z][a-z0-9_]*)`?\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_names_found():
    assert {"register_collectors", "register_health_checks", "startup"} <= set(hook_names())


@pytest.mark.parametrize("name", hook_names())
def test_hook_is_documented_with_signature_and_example(name):
    sections = doc_sections()
    assert name in sections, f"docs/plugin-hooks.md has no '## {name}' section"
    body = sections[name]
    args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"{name}({args})" in body, f"the section for {name} does not show its signature {name}({args})"
    assert "```python" in body, f"the section for {name} has no example"


@pytest.mark.parametrize("name", hook_names())
def test_hook_has_a_test(name):
    pattern = re.compile(rf"^\s*def test_hook_{name}\b", re.M)
    files = [p for p in (REPO / "tests").rglob("test_*.py")
             if pattern.search(p.read_text(encoding="utf-8"))]
    assert files, f"no test function named test_hook_{name} under tests/"


def test_no_section_for_a_hook_that_does_not_exist():
    extra = set(doc_sections()) - set(hook_names())
    assert not extra, f"docs/plugin-hooks.md documents hooks that do not exist: {sorted(extra)}"
