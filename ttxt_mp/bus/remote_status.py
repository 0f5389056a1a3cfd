"""``ttxt-mp status redis://host:6379/0/ENGINE``: an engine's bus as another host sees it.

What the bridge says about itself in the meta hash (state, events published, lag in
events and ms, drops, last error; written every second, so its age tells a stalled or dead
bridge), and per ring stream: entries Redis holds, the newest id and its age, and how old
the state a late joiner would get is. No password ever: the URL is shown redacted.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ttxt_mp.bus import format as fmt
from ttxt_mp.bus.remote import connect, list_rings, parse_id
from ttxt_mp.bus.remote_url import PASSWORD_ENV, parse_bus_url

__all__ = ["remote_status", "render_remote_status"]


def remote_status(url: str, *, password_env: str | None = PASSWORD_ENV) -> dict[str, Any]:
    """The engine's bus status as a JSON-able dict (FeedNotFound when nothing is there)."""
    from ttxt_mp.client import FeedNotFound

    bus = parse_bus_url(url, password_env=password_env)
    client = connect(bus)
    try:
        rings = list_rings(client, bus)
        if not rings:
            raise FeedNotFound(f"no rings of engine {bus.engine!r} on {bus.redacted}: is a "
                               "[[bridges]] entry publishing it?")  # fmt: skip
        bridge_raw = client.hget(fmt.meta_key(bus.engine), "bridge")
        bridge = json.loads(bridge_raw) if bridge_raw else {}
        now_ms = time.time_ns() // 1_000_000
        if bridge.get("updated_ns"):
            bridge["updated_age_s"] = round(time.time() - bridge["updated_ns"] / 1e9, 1)
        out: dict[str, Any] = {"url": bus.redacted, "engine": bus.engine, "bridge": bridge,
                               "rings": []}  # fmt: skip
        for ring in rings:
            key = fmt.ring_stream_key(bus.engine, ring)
            pipe = client.pipeline(transaction=False)
            pipe.xlen(key)
            pipe.xrevrange(key, count=1)
            pipe.hget(fmt.state_key(bus.engine, ring), "_after")
            length, last, after = pipe.execute()
            last_id = last[0][0].decode() if last else ""
            row: dict[str, Any] = {"ring": ring, "entries": length, "last_id": last_id,
                                   "last_age_s": None, "state_after": None, "state_age_s": None}  # fmt: skip
            if last:
                row["last_age_s"] = round((now_ms - parse_id(last_id)[0]) / 1000, 1)
            if after is not None:
                row["state_after"] = after.decode()
                row["state_age_s"] = round((now_ms - parse_id(after)[0]) / 1000, 1)
            out["rings"].append(row)
        return out
    finally:
        client.close()


def render_remote_status(st: dict[str, Any]) -> Any:
    """Two rich tables: the bridge, the ring streams."""
    from rich.console import Group
    from rich.table import Table

    b = st.get("bridge") or {}
    bt = Table(title=f"bridge of engine {st['engine']} on {st['url']}", title_justify="left")
    for col in ("state", "published", "lag (events)", "lag (ms)", "dropped", "updated",
                "error"):  # fmt: skip
        bt.add_column(col)
    age = b.get("updated_age_s")
    bt.add_row(str(b.get("state", "? (no bridge status)")), f"{b.get('published', 0):,}",
               f"{b.get('lag_entries', 0):,}", f"{b.get('lag_ms', 0):,.0f}",
               f"{b.get('dropped', 0):,}", "" if age is None else f"{age:.0f}s ago",
               str(b.get("last_error", "")))  # fmt: skip
    rt = Table(title="ring streams", title_justify="left")
    for col in ("ring", "entries in Redis", "newest id", "newest age", "state age"):
        rt.add_column(col)
    for r in st["rings"]:
        rt.add_row(r["ring"], f"{r['entries']:,}", r["last_id"] or "-",
                   "-" if r["last_age_s"] is None else f"{r['last_age_s']:.1f}s",
                   "-" if r["state_age_s"] is None else f"{r['state_age_s']:.1f}s")  # fmt: skip
    return Group(bt, rt)
