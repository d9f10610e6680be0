"""The shape of the layer: domain modules know nothing of HTTP, and no two modules import each other.

Read from the source (every import statement, function-level ones included), so a cycle hidden by an
import inside a function is found too.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "arcturus"
WEB = "arcturus.web"
EVENT_HANDLER = "aws_lambda_powertools.event_handler"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a``, and as ``a.b`` if a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}
OWN = {name: {i for i in imported if i in MODULES and i != name} for name, imported in MODULES.items()}


def test_no_module_of_the_layer_imports_itself_back() -> None:
    try:
        order = list(TopologicalSorter(OWN).static_order())
    except CycleError as error:
        pytest.fail(f"import cycle in arcturus: {' -> '.join(error.args[1])}")
    assert set(order) == set(MODULES)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith(WEB)))
def test_a_domain_module_knows_nothing_of_http(name: str) -> None:
    web = sorted(i for i in MODULES[name] if i == WEB or i.startswith((f"{WEB}.", EVENT_HANDLER)))
    assert web == [], f"{name} imports the web adapter or the event handler: {web}"


def test_the_walk_sees_the_web_adapter_and_its_imports() -> None:
    # Guards the test itself: were the walk blind, the tests above would pass on anything.
    assert "arcturus.web.resolver" in MODULES
    assert any(i.startswith(EVENT_HANDLER) for i in MODULES["arcturus.web.resolver"])
    assert "arcturus.identity" in OWN["arcturus.web.guards"]
