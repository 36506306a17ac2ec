"""The layers of docs/ARCHITECTURE.md, read from the source: who may import whom, and how big.

Imports are read with `ast` (every `import`, also inside functions), never by importing, so a
broken rule shows as a named file and import rather than as a side effect.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHALICELIB = ROOT / "chalicelib"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
RULES_MAY_IMPORT = ("chalicelib.models", "chalicelib.messages", "chalicelib.settings",
                    "chalicelib.errors", "chalicelib.rules")
ADAPTERS = ("chalicelib.aws", "chalicelib.github")
NOT_DEPLOYED = ("devstack", "demo", "bench", "tests")

# Known breaches, each with why it is tolerated for now. An entry no longer needed fails the test,
# so the lists only shrink. Keys: module, or module:function.
RULES_IMPORT_EXCEPTIONS: dict[str, str] = {}
LONG_MODULES: dict[str, str] = {}
LONG_FUNCTIONS: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(CHALICELIB.rglob("*.py"))}


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every dotted name `module` imports; `from a import b` yields `a.b` (b may be a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def _is_stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def _breaches(modules: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted({f"{module}:{name}" for module, path in _modules().items()
                   if _under(module, modules) for name in _imports(module, path)
                   if _under(name, forbidden)})


def test_rules_import_only_models_settings_errors_other_rules_and_the_standard_library() -> None:
    found = {(module, name) for module, path in _modules().items()
             if _under(module, ("chalicelib.rules",)) for name in _imports(module, path)
             if not _is_stdlib(name) and not _under(name, RULES_MAY_IMPORT)
             # `from chalicelib import models` also yields "chalicelib" itself.
             and name != "chalicelib"}

    def excused_by(exception: str, module: str, name: str) -> bool:
        excused_module, _, excused_import = exception.partition(":")
        return module == excused_module and _under(name, (excused_import,))

    assert sorted(f"{module}:{name}" for module, name in found
                  if not any(excused_by(e, module, name) for e in RULES_IMPORT_EXCEPTIONS)) == []
    assert [e for e in RULES_IMPORT_EXCEPTIONS
            if not any(excused_by(e, module, name) for module, name in found)] == [], \
        "remove the exceptions no longer needed"


def test_adapters_never_import_services_or_wiring() -> None:
    assert _breaches(ADAPTERS, ("chalicelib.services", "chalicelib.wiring")) == []


def test_nothing_deployed_imports_devstack_demo_bench_or_tests() -> None:
    assert _breaches(("chalicelib",), NOT_DEPLOYED) == []


def test_only_app_imports_wiring() -> None:
    assert _breaches(("chalicelib",), ("chalicelib.wiring",)) == []


def test_no_module_over_300_lines() -> None:
    long = {module for module, path in _modules().items()
            if len(path.read_text().splitlines()) > MAX_MODULE_LINES}
    assert sorted(long - set(LONG_MODULES)) == []
    assert sorted(set(LONG_MODULES) - long) == [], "remove the modules now short enough"


def test_no_function_over_50_lines() -> None:
    long: set[str] = set()
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                # The body, docstring included, from its first line to its last.
                body_lines = (node.end_lineno or node.lineno) - node.body[0].lineno + 1
                if body_lines > MAX_FUNCTION_LINES:
                    long.add(f"{module}:{node.name}")
    assert sorted(long - set(LONG_FUNCTIONS)) == []
    assert sorted(set(LONG_FUNCTIONS) - long) == [], "remove the functions now short enough"
