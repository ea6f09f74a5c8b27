"""The package's architecture, checked rather than remembered: no module imports another module's
private name (import-linter checks the layers in .ci/run), and files stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pairmi

ROOT = Path(pairmi.__file__).parent


def _is_module(package: Path, name: str) -> bool:
    return (package / f"{name}.py").is_file() or (package / name).is_dir() or any(package.glob(f"{name}.*.so"))


def test_no_module_imports_a_private_name_of_another():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            package = base.joinpath(*(node.module or "").split(".")) if node.module else base
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and not _is_module(package, alias.name):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}")
    assert not found, "private names imported across modules (make them public or move them):\n" + "\n".join(found)


def test_no_python_file_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in sorted(ROOT.rglob("*.py")) if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"files over 500 lines (split them by job): {long}"


def test_the_public_modules_hold_no_backend_branches():
    """api, nulls and stream ask a backend object (pairmi.backends.choose); only backends/ knows torch."""
    for name in ("api.py", "nulls.py", "stream.py", "topk.py", "tiles.py"):
        tree = ast.parse((ROOT / name).read_text())
        imported = {f"{'.' * node.level}{node.module or ''}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        assert not any("torch" in m for m in imported), f"{name} imports {sorted(m for m in imported if 'torch' in m)}"
        text = (ROOT / name).read_text()
        assert not any(branch in text for branch in ("backend ==", "backend !=", "be.name", "is_tensor(")), name
