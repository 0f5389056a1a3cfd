"""``ttxt-mp status`` renders a bridges table: state, rings, published, lag in events and
ms, drops, the last error; a FAILED bridge shows why."""

from __future__ import annotations

from rich.console import Console

from ttxt_mp.engine.status import render_status


def _child(name, state, detail, message=""):
    return {"name": name, "role": "bridge", "state": state, "pid": 12 if state != "FAILED" else None,
            "uptime": 5.0, "restarts": 0, "events_per_s": 10.0, "events": 1234, "reconnects": 0,
            "gaps": 1, "lost": 7, "message": message, "detail": detail}


def test_bridges_table():
    st = {"engine": "e", "pid": 1, "uptime": 3.0, "rings": [], "children": [
        _child("bridge:redis0", "DOWN", {"url": "redis://10.0.0.5:6379/0", "rings": ["binance-market"],
                                         "published": 123456, "lag_entries": 4321, "lag_ms": 2500.4,
                                         "dropped": 777, "last_error": "redis://10.0.0.5:6379/0: unreachable"}),
        _child("bridge:backup", "FAILED", {}, "bridge backup: redis://h:1/0: authentication failed"),
    ]}
    con = Console(record=True, width=250)
    con.print(render_status(st))
    text = con.export_text()
    assert "bridges" in text and "lag (events)" in text and "lag (ms)" in text
    row = next(line for line in text.splitlines() if "redis0" in line and "10.0.0.5" in line)
    for want in ("DOWN", "binance-market", "123,456", "4,321", "2,500", "777", "unreachable"):
        assert want in row, (want, row)
    failed = next(line for line in text.splitlines() if "backup" in line and "FAILED" in line)
    assert "authentication failed" in failed
