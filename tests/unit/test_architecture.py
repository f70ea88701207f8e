"""The shape of the code base, checked: where SQL may live, which packages may import which, and
where command-line arguments stop. Each rule is read from the source (ast), not from promises."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.paths import REPO

PACKAGE = REPO / "services" / "conceptfreq"
SERVICES = ("parser", "tagger", "counter", "evaluator", "query", "reporter")
SQL = re.compile(r"\b(SELECT|INSERT INTO|ALTER TABLE|CREATE TABLE)\b")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "v1" not in p.relative_to(PACKAGE).parts)


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def strings(tree: ast.AST) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module imported anywhere in the file, also inside functions."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
    return out


def test_sql_lives_only_in_the_store_adapter():
    found = [f"{relative(p)}:{line}: {text.strip().splitlines()[0][:60]}"
             for p in modules() if not relative(p).startswith("adapters/store/")
             for line, text in strings(ast.parse(p.read_text())) if SQL.search(text)]
    assert not found, "SQL outside adapters/store/:\n" + "\n".join(found)


def test_the_store_runs_sql_only_through_its_private_methods():
    """Outside adapters/store/, nothing calls the store's _execute/_insert/_insert_columns."""
    found = []
    for p in modules():
        if relative(p).startswith("adapters/store/"):
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("_execute", "_insert", "_insert_columns"):
                found.append(f"{relative(p)}:{node.lineno}: .{node.attr}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("service", SERVICES)
def test_service_packages_do_not_import_each_other(service):
    others = {s for s in SERVICES if s != service}
    found = [f"{relative(p)}:{line}: {name}" for p in sorted((PACKAGE / service).rglob("*.py"))
             for line, name in imported(ast.parse(p.read_text()))
             if name.startswith("conceptfreq.") and name.split(".")[1] in others]
    assert not found, f"{service} imports another service:\n" + "\n".join(found)


def test_core_does_no_io_and_imports_no_adapter():
    found = [f"{relative(p)}:{line}: {name}" for p in sorted((PACKAGE / "core").rglob("*.py"))
             for line, name in imported(ast.parse(p.read_text()))
             if name.startswith("conceptfreq.") and name.split(".")[1] not in ("core", "errors")]
    assert not found, "core imports outside core:\n" + "\n".join(found)


def test_command_line_arguments_stop_in_commands():
    """argparse is the commands' business: code outside commands/ never takes a Namespace (the
    commands turn flags into typed configuration first). Standalone tools with their own `main`
    (protogen, the Triton repository writer, the local stack of `make up`) parse their own flags;
    Triton's python backend calls `initialize(args)` with a dict."""
    own_main = {"protogen.py", "adapters/inference/repository.py", "adapters/inference/triton_python_model.py",
                "devservers/stack.py", "cli.py"}
    found = []
    for p in modules():
        name = relative(p)
        if name.startswith("commands/") or name in own_main:
            continue
        tree = ast.parse(p.read_text())
        found += [f"{name}:{line}: imports {module}" for line, module in imported(tree) if module == "argparse"]
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                    if arg.arg == "args" or "Namespace" in annotation:
                        found.append(f"{name}:{node.lineno}: {node.name}({arg.arg})")
    assert not found, "a Namespace reaches code outside commands/:\n" + "\n".join(found)
