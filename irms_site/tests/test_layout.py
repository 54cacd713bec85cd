"""The apps' dependencies run one way (STYLE.md): accounts and incidents use
notifications; notifications knows no domain app; no app imports the project package;
no app imports another inside a function (the way a cycle is dodged, not removed)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "incidents", "notifications")
PACKAGES = (*APPS, "irms_site")


def modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if "tests" in parts or "migrations" in parts:
            continue
        yield path


def imported_packages(path: Path, *, nested_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and (not nested_only or node.col_offset > 0):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # relative: within the same package
            found.update(name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES)
    return found


def graph() -> dict[str, set[str]]:
    edges = {app: set() for app in APPS}
    for app in APPS:
        for path in modules(app):
            edges[app] |= imported_packages(path) - {app}
    return edges


def test_notifications_imports_no_domain_app():
    assert graph()["notifications"] & {"accounts", "incidents", "irms_site"} == set()


@pytest.mark.parametrize("app", APPS)
def test_no_app_imports_the_project_package(app):
    assert "irms_site" not in graph()[app]


def test_the_app_graph_has_no_cycle():
    edges = graph()
    seen, stack = set(), []

    def visit(app):
        assert app not in stack, f"import cycle: {' -> '.join([*stack, app])}"
        if app in seen:
            return
        stack.append(app)
        for target in edges.get(app, ()):
            visit(target)
        stack.pop()
        seen.add(app)

    for app in APPS:
        visit(app)


@pytest.mark.parametrize("app", APPS)
def test_no_app_imports_another_inside_a_function(app):
    offenders = [str(path.relative_to(ROOT)) for path in modules(app) if imported_packages(path, nested_only=True)]
    assert offenders == []
