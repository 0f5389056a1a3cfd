"""Property: any events, cut into entries of any sizes, come back from the remote reader
identical and in order; a reader that stops after any number of events resumes from its
``last_id`` with nothing lost and nothing repeated beyond entry boundaries."""

from __future__ import annotations

import uuid

import pytest
from codec_strategies import any_event, shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from remote_writer import BusWriter

from ttxt_mp import GapNotice, QueueEmpty
from ttxt_mp.bus.remote import RemoteRings

events_st = st.lists(any_event.filter(lambda e: type(e) is not GapNotice), min_size=1,
                     max_size=30)  # fmt: skip


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(events=events_st, sizes=st.lists(st.integers(1, 6), min_size=1, max_size=30),
       stop_after=st.integers(0, 30))  # fmt: skip
def test_any_events_come_back_identical_and_resume_exactly(redis_server, events, sizes,
                                                          stop_after):  # fmt: skip
    engine = f"p{uuid.uuid4().hex[:12]}"
    w = BusWriter(redis_server.url, engine, numbered=False)
    w.meta()
    ends, i, j = [], 0, 0
    while i < len(events):
        n = sizes[j % len(sizes)]
        w.publish(events[i:i + n])
        i, j = min(i + n, len(events)), j + 1
        ends.append(i)
    url = f"{redis_server.url}/{engine}"
    with RemoteRings(url, start="oldest") as src:
        got = [src.get(timeout=5) for _ in events]
        with pytest.raises(QueueEmpty):
            src.get_nowait()
        assert src.last_id == w.last_id.decode()
    assert shape(got) == shape(events)
    k = min(stop_after, len(events))
    with RemoteRings(url, start="oldest") as src:
        first = [src.get(timeout=5) for _ in range(k)]
        resume = src.last_id
    boundary = max([e for e in ends if e <= k], default=0)
    with RemoteRings(url, start=resume) as src:
        rest = [src.get(timeout=5) for _ in range(len(events) - boundary)]
        with pytest.raises(QueueEmpty):
            src.get_nowait()
    assert shape(first) == shape(events[:k])
    assert shape(rest) == shape(events[boundary:])
    w.close()
