"""The pure core does no I/O and knows nothing of the server: checked on each module's imports.

The core turns bytes into feeds and feeds into timed events. Reading files, clocks, sockets and
event loops belong to the shell: ``simulator/web`` (the server), ``simulator/cli`` (the command
line) and the modules they share (``settings``, ``sources``, ``logs``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import simulator

PACKAGE = Path(simulator.__file__).resolve().parent
CORE = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "core").rglob("*.py"))
"""Every module of ``simulator/core``: a new one is held to the rule without being listed."""
WEB = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "web").rglob("*.py"))
SHELL = {"__init__.py", "__main__.py", "settings.py", "sources.py", "logs.py"}
"""What may sit at the package's top beside ``core/``, ``web/`` and ``cli/``."""

FORBIDDEN_MODULES = {
    # event loops, servers, schedulers, clocks, sockets
    "asyncio",
    "aiohttp",
    "websockets",
    "apscheduler",
    "time",
    "socket",
    "selectors",
    "ssl",
    "threading",
    "subprocess",
    "signal",
    "urllib.request",
    "http.client",
    # the file system
    "os",
    "shutil",
    "tempfile",
    "glob",
    "fileinput",
    "importlib",
    # the shell around the core
    "simulator.web",
    "simulator.web.stream",
    "simulator.web.hub",
    "simulator.settings",
    "simulator.cli",
    "simulator.sources",
}
PURE_PATHS = {"PurePath", "PurePosixPath", "PureWindowsPath"}
"""``pathlib`` names that only handle path strings (a file name's stem, say) and touch no disk."""


def _module_name(relative: str) -> str:
    return "simulator." + relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def _imports(relative: str) -> list[tuple[int, str, list[str]]]:
    """Every import in the module, anywhere in it: (line, absolute module, names imported)."""
    path = PACKAGE / relative
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module_name(relative).split(".")
    if not relative.endswith("__init__.py"):
        package = package[:-1]
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
                if not node.module:  # ``from . import wire`` imports submodules
                    found += [(node.lineno, f"{module}.{name}", []) for name in names]
                    continue
            else:
                module = node.module or ""
            found.append((node.lineno, module, names))
    return found


def _forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES)


def test_the_layout_is_core_web_cli() -> None:
    """A newcomer sees the design in the tree: the pure core, the server, the command line, the
    pytest plugin around the server, and the three shell modules both of those use."""
    assert {
        "core/replay.py",
        "core/importers/__init__.py",
        "core/importers/scribblelive.py",
    } <= set(CORE)
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == SHELL, top - SHELL
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"core", "web", "cli", "testing"}  # testing: the pytest plugin (#15)


@pytest.mark.parametrize("relative", WEB)
def test_the_server_does_not_import_the_command_line(relative: str) -> None:
    problems = [
        f"{relative}:{line}: imports {module}"
        for line, module, _ in _imports(relative)
        if module == "simulator.cli" or module.startswith("simulator.cli.")
    ]
    assert problems == []


@pytest.mark.parametrize("relative", CORE)
def test_core_imports_no_io_and_no_shell(relative: str) -> None:
    problems = []
    for line, module, names in _imports(relative):
        if _forbidden(module):
            problems.append(f"{relative}:{line}: imports {module}")
        elif module == "pathlib" and (not names or set(names) - PURE_PATHS):
            problems.append(f"{relative}:{line}: imports pathlib {names or '(module)'}")
        elif module == "io" and set(names) & {"open", "FileIO", "open_code"}:
            problems.append(f"{relative}:{line}: imports io {names}")
        elif module == "simulator" and set(names) - {"core"}:
            problems.append(f"{relative}:{line}: imports simulator {names}")
    assert problems == []


@pytest.mark.parametrize("relative", CORE)
def test_core_opens_no_files(relative: str) -> None:
    path = PACKAGE / relative
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    calls = [
        f"{relative}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id in {"open", "__import__"})
            or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in {"open", "read_text", "read_bytes", "write_text"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"io", "Path", "pathlib", "os", "builtins"}
            )
        )
    ]
    assert calls == []


def test_the_checker_sees_relative_and_nested_imports() -> None:
    """The AST walk resolves ``from .. import x`` and finds imports inside functions."""
    imports = {module for _, module, _ in _imports("core/importers/__init__.py")}
    assert {"simulator.core.archive", "simulator.core.timing", "simulator.core.model"} <= imports
    assert "simulator.core.importers.scribblelive" in imports
    replay = {module for _, module, _ in _imports("core/replay.py")}
    assert "simulator.core.wire" in replay and "simulator.core.script" in replay
    assert _forbidden("simulator.web.app") and _forbidden("asyncio")
    assert not _forbidden("datetime") and not _forbidden("simulator.core.timeline")


def _layout_section() -> str:
    readme = (Path(simulator.__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("Layout — ")
    end = readme.find("\n## ", start)
    return readme[start : end if end > 0 else None]


def test_the_readme_layout_names_every_module() -> None:
    """The README's layout is drawn from the tree: a module or package added without a line
    there fails here."""
    root = Path(simulator.__file__).parent.parent
    layout = _layout_section()
    missing = []
    for top in ("simulator", "clients"):
        for path in sorted((root / top).rglob("*.py")):
            if "static" in path.parts or path.name in ("__init__.py", "__main__.py"):
                continue
            parent = path.parent
            if parent.name in ("importers", "compat", "apidocs", "testing") or (
                top == "clients" and parent != root / "clients"
            ):
                name = f"{parent.name}/"  # a package is named as a whole
            else:
                name = f"`{path.name}`"
            if name.strip("`") not in layout:
                missing.append(str(path.relative_to(root)))
    assert missing == []
