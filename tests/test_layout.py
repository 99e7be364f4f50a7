"""The layout docs/ARCHITECTURE.md promises, read from the source: the app's parts depend on each other one way only,
only the WhatsApp worker's backends load neonize, and only app/settings.py reads the environment."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# Modules that may touch os.environ besides app/settings.py, and why.
ENVIRONMENT_EXCEPTIONS = {
    "app/whatsapp/process.py": "a worker started without an explicit environment inherits this process's",
    "app/db/embedded.py": "sets XDG_RUNTIME_DIR for the embedded Postgres it starts (a write, not a setting)",
    "app/authimport/documents.py": "reads the session string from the variable the operator named in env:NAME",
}
# The worker's backends (one process: the worker) and the import's check of the store (a child process of its own).
NEONIZE_IMPORTERS = {
    "app/whatsapp/neonize_backend.py",
    "app/whatsapp/replay.py",
    "app/authimport/whatsmeow.py",
}


def sources() -> Iterator[tuple[str, ast.Module, str]]:
    for path in sorted(APP.rglob("*.py")):
        text = path.read_text()
        yield path.relative_to(APP.parent).as_posix(), ast.parse(text), text


def imported(tree: ast.Module) -> Iterator[str]:
    """Every module a file imports, at any level (type-only and function-level imports included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def part(module: str) -> str:
    """'app.webhooks.outbox' -> 'webhooks'; 'app.settings' -> 'settings'."""
    return module.split(".")[1]


def test_the_apps_parts_depend_on_each_other_one_way() -> None:
    graph: dict[str, set[str]] = {}
    for name, tree, _ in sources():
        own = part(name.removesuffix(".py").replace("/", "."))
        targets = {part(module) for module in imported(tree) if module.startswith("app.")}
        graph.setdefault(own, set()).update(targets - {own})

    def cycle_from(start: str, node: str, path: list[str]) -> list[str] | None:
        for target in sorted(graph.get(node, ())):
            if target == start:
                return [*path, target]
            if target not in path:
                found = cycle_from(start, target, [*path, target])
                if found:
                    return found
        return None

    cycles = [cycle for start in sorted(graph) if (cycle := cycle_from(start, start, [start]))]
    assert not cycles, f"parts that import each other back: {cycles}"
    # The flow the folders name: the worker knows nothing of what stores, delivers or sends its messages.
    assert not graph["whatsapp"] & {"incoming", "webhooks", "sending", "session", "web"}
    assert not graph["webhooks"] & {"incoming", "sending", "session", "web"}  # delivery only
    assert "web" not in graph["sending"] | graph["incoming"] | graph["session"]


def test_only_the_workers_backends_load_neonize() -> None:
    loading = {name for name, tree, _ in sources() if any(part == "neonize" for part in map(root, imported(tree)))}
    assert loading == NEONIZE_IMPORTERS


def root(module: str) -> str:
    return module.split(".")[0]


def test_only_settings_reads_the_environment() -> None:
    reading = {name for name, _, text in sources() if re.search(r"\bos\.(environ|getenv)\b", text)}
    assert reading - {"app/settings.py"} == set(ENVIRONMENT_EXCEPTIONS)
