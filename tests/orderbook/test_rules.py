"""Sequence rules are objects: the book calls the one it is given, or its venue's.

The venue-specific rules are tested through the book in test_orderbook.py; here: how a
rule is chosen (object, venue id, registry, unknown exchange), what a third-party rule's
verdicts do to the book, and that the shared module names no venue."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ttxt_mp.connectors.venue as venue_mod
import ttxt_mp.orderbook as orderbook_mod
from ttxt_mp.connectors.venue import VenueSpec, venues
from ttxt_mp.orderbook import (
    APPLIED,
    NOT_SYNCED,
    SNAPSHOT,
    STALE,
    BookGap,
    Gap,
    NoRule,
    OrderBook,
    SequenceRule,
    UpdateResult,
    rule_named,
    rules_for,
)

from .models import ob

R = UpdateResult


class EvenOnly(SequenceRule):
    """A third-party rule: deltas need an even ``u``; odd is stale, ``u % 10 == 5`` a gap,
    ``u == 99`` not synced, ``u == 7`` a snapshot; snapshots with ``u < 0`` are stale."""

    name = "even"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def delta(self, book, ev):
        u = ev.last_update_id
        self.calls.append(("delta", u))
        if u == 7:
            return SNAPSHOT
        if u == 99:
            return NOT_SYNCED
        if u % 10 == 5:
            return Gap(f"five at {u} after {book.update_id}")
        return STALE if u % 2 else APPLIED

    def snapshot(self, book, ev):
        self.calls.append(("snapshot", ev.last_update_id))
        return STALE if ev.last_update_id < 0 else SNAPSHOT


def test_a_third_party_rule_object_is_used():
    rule = EvenOnly()
    book = OrderBook("x", "BTC/USDT", rules=rule)
    assert book.rules is rule
    ex = dict(ex="x")
    assert book.update(ob([(1.0, 1.0)], [(2.0, 1.0)], u=2, snapshot=True, **ex)) is R.SNAPSHOT
    assert book.update(ob([(1.5, 1.0)], u=4, **ex)) is R.APPLIED
    assert book.update(ob([(1.25, 1.0)], u=3, **ex)) is R.STALE
    assert book.update(ob(u=99, **ex)) is R.NOT_SYNCED
    assert book.update(ob(u=-1, snapshot=True, **ex)) is R.STALE
    assert book.bids() == [(1.5, 1.0), (1.0, 1.0)] and book.update_id == 4
    assert book.update(ob([(3.0, 1.0)], [(4.0, 1.0)], u=7, **ex)) is R.SNAPSHOT  # replaced
    assert book.bids() == [(3.0, 1.0)] and book.update_id == 7 and book.snapshots == 2
    assert book.update(ob(u=15, **ex)) is R.GAP
    assert book.last_gap == "five at 15 after 7" and not book.synced and book.depth() == (0, 0)
    assert (book.stale, book.not_synced, book.gaps, book.updates) == (2, 1, 1, 1)
    assert rule.calls == [("snapshot", 2), ("delta", 4), ("delta", 3), ("delta", 99),
                          ("snapshot", -1), ("delta", 7), ("delta", 15)]  # fmt: skip


def test_a_third_party_gap_can_raise_and_a_bad_verdict_is_refused():
    book = OrderBook("x", "A/B", rules=EvenOnly(), raise_on_gap=True)
    book.update(ob(u=2, snapshot=True, ex="x", sym="A/B"))
    with pytest.raises(BookGap, match="x A/B: order book gap: five at 25 after 2"):
        book.update(ob(u=25, ex="x", sym="A/B"))

    class Broken(SequenceRule):
        def delta(self, book, ev):
            return "yes"

    with pytest.raises(TypeError, match="returned 'yes' for a delta"):
        OrderBook("x", "A/B", rules=Broken()).update(ob(u=1, ex="x", sym="A/B"))
    with pytest.raises(TypeError, match="rules must be a SequenceRule"):
        OrderBook("x", "A/B", rules=object())


def test_a_duck_typed_rule_needs_no_base_class():
    class Duck:
        def delta(self, book, ev):
            return STALE

        def snapshot(self, book, ev):
            return SNAPSHOT

    book = OrderBook("x", "A/B", rules=Duck())
    assert book.update(ob(u=1, snapshot=True, ex="x", sym="A/B")) is R.SNAPSHOT
    assert book.update(ob(u=2, ex="x", sym="A/B")) is R.STALE


def test_an_unknown_exchange_gets_no_rule():
    for ex in ("x", "nosuchvenue", "sim", "nosuchvenue_futures"):
        assert isinstance(rules_for(ex), NoRule)
        assert isinstance(OrderBook(ex, "A/B").rules, NoRule)
    book = OrderBook("x", "A/B")
    assert book.rules.name == "none"
    # no id checks: deltas build a book even before a snapshot, any id applies
    assert book.update(ob([(1.0, 1.0)], u=50, ex="x", sym="A/B")) is R.APPLIED
    assert book.synced
    assert book.update(ob([(2.0, 1.0)], u=3, ex="x", sym="A/B")) is R.APPLIED
    assert book.update(ob([(0.5, 1.0)], u=1, snapshot=True, ex="x", sym="A/B")) is R.SNAPSHOT
    assert book.bids() == [(0.5, 1.0)]


def test_defaults_come_from_the_venue_registry():
    for vid, spec in venues().items():
        rule = rules_for(vid)
        if spec.book_rule:
            assert rule is venue_mod.load_target(spec.book_rule)
            assert rule.name == vid
        assert rules_for(vid.upper()) is rule
        assert rules_for(f"{vid}_futures") is rule and rules_for(f"{vid}-2") is rule
        assert rule_named(vid) is rule
        assert OrderBook(vid, "A/B").rules is rule
        assert OrderBook("x", "A/B", rules=vid).rules is rule
    assert rule_named("none") is rules_for("x")
    with pytest.raises(ValueError, match="rules must be one of"):
        OrderBook("x", "A/B", rules="nosuchvenue")


def test_a_plugin_venue_declares_its_rule(monkeypatch):
    """A venue's ``book_rule`` may name an instance or a class; no rule means NoRule."""
    found = dict(venues())
    here = __name__
    found["evenex"] = VenueSpec(id="evenex", book_rule=f"{here}:EvenOnly")
    found["plain"] = VenueSpec(id="plain")
    monkeypatch.setattr(venue_mod, "venues", lambda: found)
    assert isinstance(rules_for("evenex"), EvenOnly)
    assert isinstance(rules_for("evenex_perp"), EvenOnly)
    assert isinstance(OrderBook("evenex", "A/B").rules, EvenOnly)
    assert isinstance(OrderBook("x", "A/B", rules="evenex").rules, EvenOnly)
    assert isinstance(rules_for("plain"), NoRule) and isinstance(rule_named("plain"), NoRule)
    assert isinstance(rules_for("evenexx"), NoRule)  # a prefix counts only before a separator


def test_rules_can_be_swapped_on_a_book():
    book = OrderBook("x", "A/B")
    rule = EvenOnly()
    book.rules = rule
    assert book.rules is rule
    book.update(ob(u=2, snapshot=True, ex="x", sym="A/B"))
    assert book.update(ob(u=3, ex="x", sym="A/B")) is R.STALE and rule.calls[-1] == ("delta", 3)
    book.rules = "none"
    assert book.update(ob(u=3, ex="x", sym="A/B")) is R.APPLIED


def _string_constants(path: Path) -> list[str]:
    """Every str constant of a module except docstrings."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
        # attribute docstrings: a string expression right after an assignment
        for prev, stmt in zip(body, body[1:], strict=False):
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(prev, (ast.Assign, ast.AnnAssign))):  # fmt: skip
                docs.add(id(stmt.value))
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]  # fmt: skip


def test_the_shared_book_module_names_no_venue():
    source = Path(orderbook_mod.__file__)
    strings = _string_constants(source)
    assert strings, "the scan found no string constants at all"
    for vid in venues():
        assert not [s for s in strings if vid in s.lower()], vid
        assert vid not in source.read_text().lower(), f"{source.name} mentions {vid}"
