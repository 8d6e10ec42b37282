"""The sans-I/O core imports neither trio nor the network, and keeps no global mutable state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gateway.core

CORE = Path(gateway.core.__file__).parent
FORBIDDEN = {"trio", "trio_websocket", "socket", "ssl", "asyncio", "httpx", "wsproto", "anyio"}
NEW_MODULES = [
    "backfill_protocol",
    "backoff",
    "candles",
    "events",
    "fast_events",
    "frames",
    "holds",
    "hook_protocol",
    "latency",
    "old_names",
    "orderbook",
    "positions",
    "ratelimit",
    "sequence",
    "stop_loss",
    "symbol_machine",
    "symbol_rest",
]


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


@pytest.mark.parametrize("name", NEW_MODULES)
def test_core_module_has_no_module_level_mutable_containers(name: str) -> None:
    tree = ast.parse((CORE / f"{name}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            assert not isinstance(node.value, ast.List | ast.Dict | ast.Set), ast.dump(node)
            if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
                assert node.value.func.id not in {"list", "dict", "set", "deque"}
