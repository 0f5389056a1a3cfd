"""``ttxt-mp status``: the supervisor's status answer as rich tables.

Each process row is what the supervisor knows now: a dead process is DOWN (or FAILED)
with its exit reason and no pid; counters are totals over every restart. Status only
reads (the rings through :func:`ttxt_mp.shm.ring_stats`, which maps them read-only and
takes no consumer entry): the entry of a consumer that died attached is shown as dead,
not freed."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table


def _dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


STYLES = {"UP": "green", "RUNNING": "green", "DOWN": "red", "FAILED": "bold red",
          "ERROR": "red", "DEGRADED": "yellow", "GAP": "yellow", "RESYNCING": "yellow",
          "STARTING": "yellow", "CONNECTING": "yellow"}  # fmt: skip
NOTE_WIDTH = 100


def note(child: dict[str, Any]) -> str:
    """The child's message (why it is DOWN/FAILED, which consumer blocks it, ...), with
    the events the recorder lost, counted over all its restarts."""
    msg = str(child.get("message", ""))
    lost = int(child.get("lost", 0) or 0)
    if child.get("role") == "recorder":
        msg = f"{lost:,} events lost in gaps; {msg}" if msg else f"{lost:,} events lost in gaps"
    return msg if len(msg) <= NOTE_WIDTH else msg[: NOTE_WIDTH - 3] + "..."


def _consumer(c: dict[str, Any]) -> str:
    """``pid: lag``, or ``pid: dead`` for the entry of a process that died attached (it
    stays taken until a consumer attaching, or a blocked producer, frees it)."""
    if not c.get("alive", True):
        return f"[red]{c['pid']}: dead[/]"
    return f"{c['pid']}: {c['lag']:,}"


def render_status(st: dict[str, Any]) -> Group:
    head = Table(title=f"engine {st['engine']} (pid {st['pid']}, up {_dur(st['uptime'])})",
                 title_justify="left")  # fmt: skip
    for col in ("process", "state", "pid", "uptime", "events/s", "events", "reconnects",
                "gaps", "restarts", "note"):  # fmt: skip
        head.add_column(col, justify="right" if col in ("events/s", "events") else "left")
    for c in st["children"]:
        state = c["state"]
        head.add_row(
            c["name"], f"[{STYLES[state]}]{state}[/]" if state in STYLES else state,
            str(c["pid"] or "-"), _dur(c["uptime"]), f"{c['events_per_s']:,.0f}",
            f"{c['events']:,}", str(c["reconnects"]), str(c["gaps"]), str(c["restarts"]),
            note(c),
        )  # fmt: skip
    parts = [head]
    bridges = [c for c in st["children"] if c.get("role") == "bridge"]
    if bridges:
        parts.append(render_bridges(bridges))
    rings = Table(title="rings", title_justify="left")
    for col in ("ring", "policy", "capacity", "published", "fill", "consumers (pid: lag)"):
        rings.add_column(col)
    for r in st["rings"]:
        cons = ", ".join(_consumer(c) for c in r["consumers"]) or "-"
        rings.add_row(r["name"], r["policy"], f"{r['capacity']:,}", f"{r['published']:,}",
                      f"{r['fill']:.0%}", cons)  # fmt: skip
    parts.append(rings)
    return Group(*parts)


def render_bridges(bridges: list[dict[str, Any]]) -> Table:
    """A bridge's lag (events not yet in Redis, and the age of the oldest) and drops."""
    t = Table(title="bridges", title_justify="left")
    for col in ("bridge", "url", "state", "rings", "published", "lag (events)", "lag (ms)",
                "dropped", "error"):  # fmt: skip
        t.add_column(col, justify="right" if col in ("published", "dropped") or
                     col.startswith("lag") else "left")  # fmt: skip
    for c in bridges:
        d = c.get("detail") or {}
        state = c["state"]
        err = str(d.get("last_error", "")) or (c.get("message", "") if state == "FAILED" else "")
        t.add_row(c["name"].removeprefix("bridge:"), str(d.get("url", "-")),
                  f"[{STYLES[state]}]{state}[/]" if state in STYLES else state,
                  ", ".join(d.get("rings", [])) or "-", f"{int(d.get('published', 0)):,}",
                  f"{int(d.get('lag_entries', 0)):,}", f"{float(d.get('lag_ms', 0)):,.0f}",
                  f"{int(d.get('dropped', 0)):,}",
                  err[:NOTE_WIDTH])  # fmt: skip
    return t
