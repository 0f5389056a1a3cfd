"""A venue is one package: code outside the venue packages names no venue (no string
constant mentioning a venue id, no import of a venue package). Docstrings and comments may
give examples; code may not branch on a venue."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ttxt_mp
from ttxt_mp.connectors.venue import builtin_packages, venue_ids

ROOT = Path(ttxt_mp.__file__).parent


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def offenders(root: Path = ROOT) -> list[str]:
    ids = venue_ids()
    assert {"binance", "bybit"} <= set(ids)
    word = re.compile("|".join(map(re.escape, ids)), re.I)
    venue_dirs = [root / p.split(".", 1)[1].replace(".", "/") for p in builtin_packages()]
    found = []
    for path in sorted(root.rglob("*.py")):
        if any(d in path.parents for d in venue_dirs):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        where = path.relative_to(root.parent)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docs and word.search(node.value)):  # fmt: skip
                found.append(f"{where}:{node.lineno}: {node.value[:60]!r}")
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names]
                if any(word.search(n) for n in names):
                    found.append(f"{where}:{node.lineno}: imports {names}")
    return found


def test_shared_code_names_no_venue():
    assert offenders() == []


def test_the_scan_finds_a_venue_name(tmp_path):
    """The scan is not vacuous: a venue literal in a shared module is reported, the same
    in a venue package or a docstring is not."""
    root = tmp_path / "ttxt_mp"
    (root / "engine").mkdir(parents=True)
    (root / "connectors" / "binance").mkdir(parents=True)
    (root / "engine" / "probe.py").write_text('"""Doc naming binance is fine."""\nX = {"bybit": 1}\n'
                                              "from ttxt_mp.connectors.binance import VENUE\n")
    (root / "connectors" / "binance" / "ok.py").write_text('ID = "binance"\n')
    got = offenders(root)
    assert len(got) == 2, got
    assert any("probe.py:2" in x and "bybit" in x for x in got), got
    assert any("probe.py:3: imports" in x for x in got), got
