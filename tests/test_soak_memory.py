"""Memory soak (issue 9, item 11): the simulator and every engine process (supervisor,
connectors, recorder) at demo load for ``TTXT_MP_SOAK_S`` seconds (default 600). After a
warm-up (the first 20 %), no process may grow more than 5 % above its post-warm-up RSS."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
from engine_process import CORE, EngineProcess
from rss_sampling import children, cmdline, rss_kb

from ttxt_mp.engine.demo import SimProcess, demo_config_text

SOAK_S = float(os.environ.get("TTXT_MP_SOAK_S", "600"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(SOAK_S) + 180)]
SAMPLE_S = 2.0
SLACK_KB = 1024  # page-granularity noise on small processes


def test_engine_and_simulator_memory_stays_flat(tmp_path: Path):
    sim = SimProcess(["BTC/USDT", "ETH/USDT"], venues=CORE, seed=17)
    name = f"soak{os.getpid()}"
    text = demo_config_text(sim.host_port, name, venues=CORE) + (
        f'\n[recorder]\nenabled = true\ndir = "{tmp_path / "rec"}"\n')
    eng = EngineProcess(tmp_path, name, text)
    try:
        eng.start()
        eng.wait_child("recorder", lambda c: bool(c["pid"]), timeout=30)
        pids = {"simulator": sim.proc.pid, "supervisor": eng.proc.pid}
        for pid in children(eng.proc.pid):
            pids[cmdline(pid).split(" -m ", 1)[-1][:60] + f" [{pid}]"] = pid
        assert len(pids) >= 5, pids  # simulator, supervisor, 2 connectors, recorder
        series: dict[str, list[int]] = {k: [] for k in pids}
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < SOAK_S:
            for k, pid in pids.items():
                kb = rss_kb(pid)
                assert kb is not None, f"{k} died during the soak:\n{eng.output()[-2000:]}"
                series[k].append(kb)
            time.sleep(SAMPLE_S)  # sampling period, not synchronisation
        warm = max(3, len(next(iter(series.values()))) // 5)
        report = []
        for k, s in series.items():
            base = statistics.median(s[warm : warm + 5])
            peak = max(s[warm:])
            report.append(f"{k}: {base / 1024:.1f} -> peak {peak / 1024:.1f} MiB")
            assert peak <= base * 1.05 + SLACK_KB, "\n".join(report)
        assert eng.status()["pid"] == eng.proc.pid
        print("\n".join(report), f"({elapsed:.0f} s)")
    finally:
        eng.stop()
        sim.stop()
