"""One definition of each thing: no class name used for two different classes, and no constant
written out twice (the same name and the same value in two modules) in the product code."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bot", "handlers", "storage", "scheduler")
SKIP = ("bot/sim/", "storage/migrations/")  # the simulators are test world; migrations frozen


def _modules(root: Path = ROOT) -> dict[str, ast.Module]:
    out = {}
    for package in PRODUCT:
        for path in sorted((root / package).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            if not name.startswith(SKIP):
                out[name] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def colliding_classes(root: Path = ROOT) -> dict[str, list[str]]:
    """Class names defined at the top of more than one module."""
    where: dict[str, list[str]] = defaultdict(list)
    for name, tree in _modules(root).items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                where[node.name].append(name)
    return {cls: files for cls, files in where.items() if len(files) > 1}


def repeated_constants(root: Path = ROOT) -> dict[str, list[str]]:
    """UPPER_CASE module constants given the same value in more than one module."""
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, tree in _modules(root).items():
        for node in tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign) and node.value is not None
                else []
            )
            value = getattr(node, "value", None)
            for target in targets:
                if isinstance(target, ast.Name) and target.id.isupper() and value is not None:
                    where[(target.id, ast.dump(value))].append(name)
    return {const: files for (const, _), files in where.items() if len(files) > 1}


def test_no_two_classes_share_a_name() -> None:
    assert colliding_classes() == {}


def test_no_constant_is_written_out_twice() -> None:
    assert repeated_constants() == {}
