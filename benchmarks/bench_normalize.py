"""Normalization frames/s: ttxt_mp normalizers vs a json.loads + Decimal baseline (and
cryptofeed's own feed handlers when cryptofeed is installed), on documented frames.

Frames are the example messages of the Binance and Bybit API docs (tests/fixtures), sent
compact as on the wire; Binance frames are wrapped as combined streams. Diff-depth frames
get increasing update ids so every frame is a fresh update (bookTicker and level-1 frames
too, aggTrade frames fresh aggregate ids; USDⓈ-M depth frames a ``pu`` chain, mark price
and liquidation frames fresh times). The Binance USDⓈ-M rows ("binance-usdm") run the
same normalizer on the futures documentation's messages. Bybit's level-1 frame is the documented
snapshot cut to one level per side on ``orderbook.1`` (the page shows no level-1
example), normalized into a BookTicker beside a depth-50 book. Columns:

- ``ttxt_mp`` : msgspec decode + normalize to events + ``layout_for(kind).pack_into`` into a
  ring-slot bytearray (standing in for publish).
- ``normalize only`` : the same without the pack.
- ``json+Decimal`` : ``json.loads`` then ``Decimal`` per price/qty into dicts, the way
  cryptofeed normalizes (no book, no publish).
- ``cryptofeed`` : cryptofeed's ``Feed.message_handler`` for the same frame (includes its
  own Decimal book update and callback), where it handles that message type.

Run: ``python benchmarks/bench_normalize.py`` (``--quick`` for a smoke run, ``--only TEXT``
for the cases whose name contains TEXT, e.g. ``--only usdm``; ``--coinbase`` / ``--okx`` for
one venue's section).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_orderbook import print_table  # noqa: E402
from fixtures import binance_futures_docs as fut  # noqa: E402
from fixtures import exchange_docs as docs  # noqa: E402

from ttxt_mp.codec import layout_for  # noqa: E402
from ttxt_mp.connectors.binance.normalizer import BinanceNormalizer  # noqa: E402
from ttxt_mp.connectors.bybit.normalizer import BybitNormalizer  # noqa: E402

N_VARIANTS = 512


def compact(doc) -> bytes:
    return msgspec.json.encode(msgspec.json.decode(doc.frame))


def binance_frames(doc, stream: str, levels: int = 0) -> list[bytes]:
    """Combined-stream frames; depth frames get fresh U/u (and ``levels`` levels/side)."""
    msg = msgspec.json.decode(doc.frame)
    out = []
    for i in range(N_VARIANTS):
        e = msg.get("e")
        if e is None or e == "bookTicker":  # Spot's has no event type
            msg["u"] = 400900217 + i
        elif e == "aggTrade":
            msg["a"], msg["f"], msg["l"] = 12345 + i, 100 + 6 * i, 105 + 6 * i
        elif e == "markPriceUpdate":
            msg["E"] = 1562305380000 + 1000 * i
        elif e == "forceOrder":
            msg["E"] = msg["o"]["T"] = 1568014460893 + 1000 * i
        if e == "depthUpdate":
            msg["U"], msg["u"] = 161 + 4 * i, 164 + 4 * i
            if "pu" in msg:
                msg["pu"] = 160 + 4 * i
            if levels:
                msg["b"] = [[f"{30000 - 0.1 * k:.2f}", f"{0.001 * (k + i % 7):.3f}"]
                            for k in range(levels)]  # fmt: skip
                msg["a"] = [[f"{30000.1 + 0.1 * k:.2f}", f"{0.002 * (k + i % 5):.3f}"]
                            for k in range(levels)]  # fmt: skip
        out.append(msgspec.json.encode({"stream": stream, "data": msg}))
    return out


def bybit_frames(doc, level1: bool = False) -> list[bytes]:
    msg = msgspec.json.decode(doc.frame)
    if level1:
        msg["topic"] = msg["topic"].replace("orderbook.50.", "orderbook.1.")
        msg["data"]["b"], msg["data"]["a"] = msg["data"]["b"][:1], msg["data"]["a"][:1]
    out = []
    for i in range(N_VARIANTS):
        if isinstance(msg["data"], dict):
            msg["data"]["u"] = 177400508 + i
        out.append(msgspec.json.encode(msg))
    return out


# --------------------------------------------------------------------------- baseline


def _levels(raw) -> list:
    return [(Decimal(p), Decimal(q)) for p, q in raw]


def baseline_binance(frame: bytes):
    msg = json.loads(frame)
    data = msg["data"] if "stream" in msg else msg
    e = data.get("e")
    if e is None or e == "bookTicker":
        return {"symbol": data["s"], "seq": data["u"], "bid": Decimal(data["b"]),
                "bid_amount": Decimal(data["B"]), "ask": Decimal(data["a"]),
                "ask_amount": Decimal(data["A"]), "ts": data.get("E", 0) / 1000.0}  # fmt: skip
    if e == "markPriceUpdate":
        return {"symbol": data["s"], "mark_price": Decimal(data["p"]),
                "index_price": Decimal(data["i"]),
                "funding_rate": Decimal(data["r"]) if data["r"] else Decimal(0),
                "next_funding_time": data["T"] / 1000.0, "ts": data["E"] / 1000.0}  # fmt: skip
    if e == "forceOrder":
        o = data["o"]
        return {"symbol": o["s"], "side": o["S"].lower(), "price": Decimal(o["ap"] or o["p"]),
                "quantity": Decimal(o["z"] or o["q"]), "ts": o["T"] / 1000.0}  # fmt: skip
    if e == "aggTrade":
        return {"symbol": data["s"], "side": "sell" if data["m"] else "buy", "id": data["a"],
                "price": Decimal(data["p"]), "amount": Decimal(data["q"]),
                "ts": data["T"] / 1000.0}  # fmt: skip
    if e == "depthUpdate":
        return {"symbol": data["s"], "ts": data["E"] / 1000.0, "seq": data["u"],
                "bid": _levels(data["b"]), "ask": _levels(data["a"])}  # fmt: skip
    if e == "trade":
        return {"symbol": data["s"], "side": "sell" if data["m"] else "buy", "id": data["t"],
                "price": Decimal(data["p"]), "amount": Decimal(data["q"]),
                "ts": data["T"] / 1000.0}  # fmt: skip
    k = data["k"]
    return {"symbol": data["s"], "start": k["t"] / 1000.0, "stop": k["T"] / 1000.0,
            "interval": k["i"], "trades": k["n"], "closed": k["x"],
            **{f: Decimal(k[f]) for f in "ochlv"}}  # fmt: skip


def baseline_bybit(frame: bytes):
    msg = json.loads(frame)
    topic, data = msg["topic"], msg["data"]
    if topic.startswith("orderbook.1."):  # level 1 as best bid/offer
        (bp, bq), (ap, aq) = data["b"][0], data["a"][0]
        return {"symbol": data["s"], "ts": msg["ts"] / 1000.0, "seq": data["u"],
                "bid": Decimal(bp), "bid_amount": Decimal(bq), "ask": Decimal(ap),
                "ask_amount": Decimal(aq)}  # fmt: skip
    if topic.startswith("orderbook"):
        return {"symbol": data["s"], "ts": msg["ts"] / 1000.0, "seq": data["u"],
                "snapshot": msg["type"] == "snapshot",
                "bid": _levels(data["b"]), "ask": _levels(data["a"])}  # fmt: skip
    if topic.startswith("publicTrade"):
        return [{"symbol": t["s"], "side": t["S"].lower(), "id": t["i"],
                 "price": Decimal(t["p"]), "amount": Decimal(t["v"]), "ts": t["T"] / 1000.0}
                for t in data]  # fmt: skip
    return [{"start": k["start"] / 1000.0, "stop": k["end"] / 1000.0,
             "interval": k["interval"], "closed": k["confirm"],
             **{f: Decimal(k[f]) for f in ("open", "close", "high", "low", "volume")}}
            for k in data]  # fmt: skip


# --------------------------------------------------------------------------- cryptofeed


def cryptofeed_handler(exchange: str, frames: list):
    """(async handler(frame), note) using cryptofeed's own feed, or (None, reason).

    cryptofeed checks Binance update ids, so its book id is rewound whenever the frame list
    starts over: every frame it sees is then a fresh, contiguous update."""
    try:
        from cryptofeed.defines import L2_BOOK
        from cryptofeed.exchanges import Binance, Bybit
        from cryptofeed.symbols import Symbols
        from cryptofeed.types import OrderBook as CfBook
    except Exception as e:  # not installed or broken
        return None, f"cryptofeed unavailable: {e.__class__.__name__}: {e}"

    async def noop(*_a, **_k):
        return None

    if exchange == "binance":
        info = json.loads(docs.BINANCE_EXCHANGE_INFO.frame)
        info["symbols"][0].update(symbol="BNBBTC", baseAsset="BNB", quoteAsset="BTC")
        info["symbols"][0]["filters"] = [json.loads(docs.BINANCE_PRICE_FILTER.frame)]
        Symbols.set(Binance.id, *Binance._parse_symbol_data(info))
        feed = Binance(symbols=["BNB-BTC"], channels=[L2_BOOK], callbacks={L2_BOOK: noop})
        feed._l2_book["BNB-BTC"] = CfBook(Binance.id, "BNB-BTC")
        feed.last_update_id["BNB-BTC"] = 160
    else:
        Symbols.set(
            Bybit.id, *Bybit._parse_symbol_data([json.loads(docs.BYBIT_INSTRUMENTS_SPOT.frame)])
        )
        feed = Bybit(symbols=["BTC-USDT"], channels=[L2_BOOK], callbacks={L2_BOOK: noop})
        feed._l2_book["BTC-USDT"] = CfBook(Bybit.id, "BTC-USDT")

    class Conn:
        uuid = "bench"
        address = "wss://stream.bybit.com/v5/public/spot"

    conn = Conn()
    first = frames[0]

    async def handle(frame: bytes):
        if frame is first and exchange == "binance":
            feed.last_update_id["BNB-BTC"] = 160
        await feed.message_handler(frame.decode(), conn, 0.0)

    return handle, f"cryptofeed {__import__('cryptofeed').__version__}" if hasattr(
        __import__("cryptofeed"), "__version__"
    ) else "cryptofeed"


# --------------------------------------------------------------------------- timing


def rate(fn, frames: list, n: int, repeats: int) -> float:
    k = len(frames)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            fn(frames[i % k])
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def async_rate(handler, frames: list, n: int, repeats: int) -> float:
    async def run() -> float:
        k = len(frames)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(n):
                await handler(frames[i % k])
            times.append(time.perf_counter() - t0)
        return n / statistics.median(times)

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (small N, 1 repeat)")
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", metavar="TEXT",
                    help="only the cases whose name contains TEXT (e.g. usdm)")

    ap.add_argument("--coinbase", action="store_true", help="only the Coinbase cases")
    ap.add_argument("--okx", action="store_true", help="only the OKX cases")
    a = ap.parse_args()
    n, repeats = (2_000, 1) if a.quick else (a.frames, a.repeats)
    if a.okx:
        bench_okx(n, repeats, bytearray(1 << 16))
        return
    if a.coinbase:
        bench_coinbase(n, repeats, bytearray(1 << 16))
        return

    cases = [
        ("binance", "depthUpdate (doc, 1+1 levels)",
         binance_frames(docs.BINANCE_DEPTH_UPDATE, "bnbbtc@depth@100ms"), True),
        ("binance", "depthUpdate (20+20 levels)",
         binance_frames(docs.BINANCE_DEPTH_UPDATE, "bnbbtc@depth@100ms", 20), True),
        ("binance", "trade (doc)", binance_frames(docs.BINANCE_TRADE, "bnbbtc@trade"), False),
        ("binance", "aggTrade (doc)", binance_frames(docs.BINANCE_AGG_TRADE, "bnbbtc@aggTrade"),
         False),
        ("binance", "bookTicker (doc)",
         binance_frames(docs.BINANCE_BOOK_TICKER, "bnbusdt@bookTicker"), False),
        ("binance", "kline (doc)", binance_frames(docs.BINANCE_KLINE, "bnbbtc@kline_1m"), False),
        ("binance-usdm", "depthUpdate with pu (doc, 1+1 levels)",
         binance_frames(fut.DEPTH_UPDATE, "btcusdt@depth@100ms"), False),
        ("binance-usdm", "depthUpdate with pu (20+20 levels)",
         binance_frames(fut.DEPTH_UPDATE, "btcusdt@depth@100ms", 20), False),
        ("binance-usdm", "aggTrade (doc)", binance_frames(fut.AGG_TRADE, "btcusdt@aggTrade"),
         False),
        ("binance-usdm", "bookTicker (doc, with e/E/T)",
         binance_frames(fut.BOOK_TICKER, "bnbusdt@bookTicker"), False),
        ("binance-usdm", "markPriceUpdate -> MarkPrice (doc)",
         binance_frames(fut.MARK_PRICE, "btcusdt@markPrice@1s"), False),
        ("binance-usdm", "forceOrder -> Liquidation (doc)",
         binance_frames(fut.FORCE_ORDER, "btcusdt@forceOrder"), False),
        ("bybit", "orderbook delta (doc, 5+7 levels)",
         bybit_frames(docs.BYBIT_ORDERBOOK_DELTA), True),
        ("bybit", "orderbook.1 -> BookTicker (doc snapshot, 1+1 levels)",
         bybit_frames(docs.BYBIT_ORDERBOOK_SNAPSHOT, level1=True), False),
        ("bybit", "publicTrade (doc)", bybit_frames(docs.BYBIT_TRADE), False),
        ("bybit", "kline (doc)", bybit_frames(docs.BYBIT_KLINE), False),
    ]  # fmt: skip
    buf = bytearray(1 << 16)
    notes = []
    cases = [c for c in cases if a.only in f"{c[0]} {c[1]}"]
    for exchange, what, frames, book in cases:
        binance = exchange.startswith("binance")
        norm = BinanceNormalizer() if binance else BybitNormalizer(
            book_depth=50, book_ticker=True)  # as a depth-50 connector with book tickers
        normalize = norm.normalize
        baseline = baseline_binance if binance else baseline_bybit

        def publish(frame, normalize=normalize):
            for ev in normalize(frame, 0):
                layout_for(type(ev)).pack_into(buf, 0, ev)

        def only(frame, normalize=normalize):
            normalize(frame, 0)

        rows = [
            ("ttxt_mp (decode+normalize+pack)", rate(publish, frames, n, repeats)),
            ("ttxt_mp normalize only", rate(only, frames, n, repeats)),
            ("json.loads + Decimal", rate(baseline, frames, n, repeats)),
        ]
        if book:
            handler, note = cryptofeed_handler(exchange, frames)
            if handler is None:
                notes.append(note)
            else:
                try:
                    rows.append((f"{note} message_handler (+ its book)",
                                 async_rate(handler, frames, n, repeats)))  # fmt: skip
                except Exception as e:
                    notes.append(f"cryptofeed {exchange} failed: {e.__class__.__name__}: {e}")
        print_table(
            f"{exchange} {what}: {n:,} frames, median of {repeats}",
            ("pipeline", "frames/s"),
            rows,
            "json.loads + Decimal",
        )
    for note in notes:
        print(f"\nnote: {note}")
    bench_bybit_linear(n, repeats, buf, a.only)
    bench_kraken(n, repeats, buf)
    bench_coinbase(n, repeats, buf)
    bench_okx(n, repeats, buf)


# --------------------------------------------------------------------------- Bybit linear


def bybit_linear_frames(doc, **data_fields) -> list[bytes]:
    """Variants of a documented linear frame; ``data_fields``: name -> fn(i) -> value."""
    msg = msgspec.json.decode(doc.frame)
    out = []
    for i in range(N_VARIANTS):
        for k, fn in data_fields.items():
            msg["data"][k] = fn(i)
        out.append(msgspec.json.encode(msg))
    return out


def baseline_bybit_linear(frame: bytes):
    msg = json.loads(frame)
    topic, data = msg["topic"], msg["data"]
    if topic.startswith("tickers."):
        return {k: Decimal(data[k]) for k in ("markPrice", "indexPrice", "fundingRate",
                                              "openInterest", "openInterestValue") if k in data}
    if topic.startswith("allLiquidation."):
        return [{"symbol": x["s"], "side": "sell" if x["S"] == "Buy" else "buy",
                 "price": Decimal(x["p"]), "amount": Decimal(x["v"]), "ts": x["T"] / 1000.0}
                for x in data]  # fmt: skip
    return baseline_bybit(frame)


def bench_bybit_linear(n: int, repeats: int, buf: bytearray, only: str = "") -> None:
    """Linear streams through a normalizer as a linear connector with every derivative
    stream (depth 50, mark price, open interest); ticker deltas are merged into the
    documented snapshot (sent once before timing)."""
    from ttxt_mp.connectors.normalizer import Instrument, SymbolMap

    insts = [Instrument(native=s, base=s[:-4], quote="USDT", kind="linear", settle="USDT")
             for s in ("BTCUSDT", "ROSEUSDT")]  # fmt: skip
    norm = BybitNormalizer(SymbolMap(insts, exchange="bybit"), book_depth=50,
                           mark_price=True, open_interest=True)  # fmt: skip
    norm.normalize(compact(docs.BYBIT_TICKER_CONTRACT_SNAPSHOT), 0)
    mark = lambda i: f"{17247.73 + 0.01 * (i % 97):.2f}"  # noqa: E731
    cases = [
        ("orderbook delta (doc, 5+7 levels)", bybit_frames(docs.BYBIT_ORDERBOOK_DELTA)),
        ("tickers delta (doc: best bid/ask only, no event)",
         bybit_linear_frames(docs.BYBIT_TICKER_CONTRACT_DELTA,
                             ask1Size=lambda i: f"{33.175 + 0.001 * i:.3f}")),
        ("tickers delta (+ markPrice, openInterest: 2 events)",
         bybit_linear_frames(docs.BYBIT_TICKER_CONTRACT_DELTA, markPrice=mark,
                             openInterest=lambda i: f"{68257.758 + 0.001 * i:.3f}")),
        ("allLiquidation (doc)", bybit_linear_frames(docs.BYBIT_ALL_LIQUIDATION)),
        ("publicTrade (doc)", bybit_frames(docs.BYBIT_TRADE)),
    ]  # fmt: skip
    cases = [c for c in cases if only in f"bybit linear {c[0]}"]
    normalize = norm.normalize

    def publish(frame):
        for ev in normalize(frame, 0):
            layout_for(type(ev)).pack_into(buf, 0, ev)

    for what, frames in cases:
        rows = [
            ("ttxt_mp (decode+normalize+pack)", rate(publish, frames, n, repeats)),
            ("ttxt_mp normalize only", rate(lambda f: normalize(f, 0), frames, n, repeats)),
            ("json.loads + Decimal", rate(baseline_bybit_linear, frames, n, repeats)),
        ]
        print_table(f"bybit linear {what}: {n:,} frames, median of {repeats}",
                    ("pipeline", "frames/s"), rows, "json.loads + Decimal")  # fmt: skip


# --------------------------------------------------------------------------- OKX


def okx_book_stream(count: int, levels: int = 400, seed: int = 1) -> tuple[bytes, list[bytes]]:
    """A ``books`` snapshot of ``levels`` per side and ``count`` updates chained on it
    (1-4 changed levels each, mostly within the best 50, so the best 25 move), every
    message with the checksum of the book it leaves, texts as OKX prints them."""
    import heapq
    import random

    from ttxt_mp.connectors.okx.checksum import okx_checksum

    rng = random.Random(seed)
    bids = {10_000 - i: str(rng.randint(1, 500)) for i in range(levels)}
    asks = {10_001 + i: str(rng.randint(1, 500)) for i in range(levels)}
    px = lambda t: f"{t / 10:g}"  # noqa: E731

    def checksum() -> int:
        return okx_checksum([f"{px(t)}:{bids[t]}" for t in heapq.nlargest(25, bids)],
                            [f"{px(t)}:{asks[t]}" for t in heapq.nsmallest(25, asks)])  # fmt: skip

    def frame(action: str, b, a, prev: int, seq: int) -> bytes:
        return msgspec.json.encode({"arg": {"channel": "books", "instId": "BTC-USDT"},
                                    "action": action, "data": [{
                                        "asks": [[px(t), q, "0", "1"] for t, q in a],
                                        "bids": [[px(t), q, "0", "1"] for t, q in b],
                                        "ts": "1597026383085", "checksum": checksum(),
                                        "prevSeqId": prev, "seqId": seq}]})  # fmt: skip

    seq = 1000
    snap = frame("snapshot", sorted(bids.items(), reverse=True), sorted(asks.items()), -1, seq)
    out = []
    for _ in range(count):
        b, a = [], []
        for _ in range(rng.randint(1, 4)):
            is_bid = rng.random() < 0.5
            side, best = (bids, max(bids)) if is_bid else (asks, min(asks))
            tick = best - rng.randint(-2, 50) if is_bid else best + rng.randint(-2, 50)
            if (is_bid and tick >= min(asks)) or (not is_bid and tick <= max(bids)):
                continue
            q = "0" if tick in side and rng.random() < 0.4 else str(rng.randint(1, 500))
            if q == "0":
                side.pop(tick)
            else:
                side[tick] = q
            (b if is_bid else a).append((tick, q))
        prev, seq = seq, seq + rng.randint(1, 20)
        out.append(frame("update", b, a, prev, seq))
    return snap, out


def chain_rate(step, reset, frames: list, repeats: int) -> float:
    """Frames/s through ``step`` over the whole chain (``reset()`` untimed before each run)."""
    times = []
    for _ in range(repeats):
        reset()
        t0 = time.perf_counter()
        for f in frames:
            step(f)
        times.append(time.perf_counter() - t0)
    return len(frames) / statistics.median(times)


def bench_okx(n: int, repeats: int, buf: bytearray) -> None:
    """OKX ``books`` (400 levels) updates: normalize (+ pack), and the connector's book path
    (normalize + seqId chain + apply + checksum of the best 25 from the kept level text) with
    checksums verified, then with OKX's 0 (nothing to verify); the difference per update is
    the checksum's cost. Then the documented trades, candle and swap frames."""
    from fixtures import okx_docs

    from ttxt_mp.connectors.normalizer import Instrument, SymbolMap
    from ttxt_mp.connectors.okx.normalizer import OkxNormalizer
    from ttxt_mp.connectors.okx.sync import OkxBookSync

    count = min(n, 20_000)
    snap, frames = okx_book_stream(count)
    zero = [f.replace(b'"checksum":', b'"checksum":0,"x":') for f in frames]
    snap0 = snap.replace(b'"checksum":', b'"checksum":0,"x":')
    smap = SymbolMap([Instrument(native="BTC-USDT", base="BTC", quote="USDT")], exchange="okx")
    norm = OkxNormalizer(smap, book_depth=400)
    state: dict[str, OkxBookSync] = {}

    def reset(first: bytes = snap) -> None:
        state["sync"] = sync = OkxBookSync("BTC/USDT")
        [ev] = norm.normalize(first, 0)
        sync.on_event(ev, norm.texts.pop("BTC/USDT", None))

    def book_path(frame: bytes) -> None:
        sync = state["sync"]
        for ev in norm.normalize(frame, 0):
            sync.on_event(ev, norm.texts.pop("BTC/USDT", None))

    def publish(frame: bytes) -> None:
        for ev in norm.normalize(frame, 0):
            layout_for(type(ev)).pack_into(buf, 0, ev)

    def baseline(frame: bytes):
        d = json.loads(frame)["data"][0]
        return ([(Decimal(p), Decimal(q)) for p, q, *_ in d["bids"]],
                [(Decimal(p), Decimal(q)) for p, q, *_ in d["asks"]])  # fmt: skip

    with_sum = chain_rate(book_path, reset, frames, repeats)
    state["sync"].checksum_errors == 0 or sys.exit("okx bench: a checksum did not verify")
    checked = state["sync"].checked
    without = chain_rate(book_path, lambda: reset(snap0), zero, repeats)
    reset()
    sync = state["sync"]
    text = sync.text
    assert text is not None
    k = 20_000
    t0 = time.perf_counter()
    for _ in range(k):
        text.checksum()
    crc_us = (time.perf_counter() - t0) / k * 1e6
    rows = [
        ("ttxt_mp (decode+normalize+pack)", rate(publish, frames, count, repeats)),
        ("ttxt_mp normalize only", rate(lambda f: norm.normalize(f, 0), frames, count, repeats)),
        ("book path, checksum verified", with_sum),
        ("book path, checksum 0 (June 2026 on)", without),
        ("json.loads + Decimal", rate(baseline, frames, count, repeats)),
    ]
    print_table(f"okx books update (1-4 levels, 400-level book): {count:,} chained frames, "
                f"median of {repeats}", ("pipeline", "frames/s"), rows,
                "json.loads + Decimal")  # fmt: skip
    print(f"okx checksum per update: {1e6 / with_sum - 1e6 / without:.2f} us (book path with "
          f"minus without; {checked:,} verified per run), the CRC of the best 25 alone "
          f"{crc_us:.2f} us")  # fmt: skip
    perp = SymbolMap([Instrument(native=s, base=s.split("-")[0], quote="USDT", kind="linear",
                                 settle="USDT") for s in ("BTC-USDT-SWAP", "IOST-USDT-SWAP")],
                     exchange="okx")  # fmt: skip
    swap = OkxNormalizer(perp, book_depth=400)
    swap.normalize(okx_docs.OKX_MARK_PRICE.frame.replace(b"LTC-USD-190628", b"BTC-USDT-SWAP"))
    cases = [
        ("trades (doc)", norm, okx_docs.OKX_TRADES.frame),
        ("candle1Dutc (doc row)", norm,
         okx_docs.OKX_CANDLE.frame.replace(b'"candle1D"', b'"candle1Dutc"')),
        ("mark-price -> MarkPrice", swap,
         okx_docs.OKX_MARK_PRICE.frame.replace(b"LTC-USD-190628", b"BTC-USDT-SWAP")),
        ("open-interest (doc)", swap, okx_docs.OKX_OPEN_INTEREST.frame),
        ("liquidation-orders (doc)", swap, okx_docs.OKX_LIQUIDATIONS.frame),
    ]  # fmt: skip
    for what, nz, frame in cases:
        one = [msgspec.json.encode(msgspec.json.decode(frame))]

        def pub(f: bytes, nz: OkxNormalizer = nz) -> None:
            for ev in nz.normalize(f, 0):
                layout_for(type(ev)).pack_into(buf, 0, ev)

        print_table(f"okx {what}: {n:,} frames, median of {repeats}", ("pipeline", "frames/s"),
                    [("ttxt_mp (decode+normalize+pack)", rate(pub, one, n, repeats)),
                     ("json.loads", rate(json.loads, one, n, repeats))],
                    "json.loads")  # fmt: skip


# --------------------------------------------------------------------------- Kraken


def bench_kraken(n: int, repeats: int, buf: bytearray) -> None:
    """Kraken v2 ``book`` updates: the documented update frame through the normalizer, and
    the book sync per update (apply, truncate to the depth, CRC32 of the top 10 levels
    against the message's checksum) on the checksum guide's BTC/USD book (depth 10 and a
    100-level book), each update a new quantity at one top-10 level (one level text to
    format, the rest cached)."""
    from fixtures import kraken_docs as kd

    from ttxt_mp.connectors.kraken.normalizer import KrakenNormalizer

    norm = KrakenNormalizer({s: s for s in ("MATIC/USD", "BTC/USD")})
    doc = msgspec.json.decode(kd.BOOK_UPDATE.frame)
    frames = []
    for i in range(N_VARIANTS):
        doc["data"][0]["bids"][0]["qty"] = round(1098.3947558 + i * 0.0001, 7)
        frames.append(msgspec.json.encode(doc))
    normalize = norm.normalize

    def publish(frame):
        for ev in normalize(frame, 0):
            layout_for(type(ev)).pack_into(buf, 0, ev)

    def baseline(frame):
        d = json.loads(frame, parse_float=Decimal)["data"][0]
        return ({x["price"]: x["qty"] for x in d["bids"]},
                {x["price"]: x["qty"] for x in d["asks"]}, d["checksum"])  # fmt: skip

    rows = [("ttxt_mp (decode+normalize+pack)", rate(publish, frames, n, repeats)),
            ("ttxt_mp normalize only", rate(lambda f: normalize(f, 0), frames, n, repeats)),
            ("json.loads(parse_float=Decimal)", rate(baseline, frames, n, repeats))]  # fmt: skip
    print_table(f"kraken book update (doc, 1 level): {n:,} frames, median of {repeats}",
                ("pipeline", "frames/s"), rows, "json.loads(parse_float=Decimal)")  # fmt: skip

    [snap] = norm.normalize(kd.CHECKSUM_SNAPSHOT.frame, 0)
    for depth, extra in ((10, 0), (100, 90)):
        bench_kraken_sync(snap, kd.CHECKSUM_PRECISION, depth, extra, n, repeats)


def bench_kraken_sync(snap, precision: tuple[int, int], depth: int, extra: int, n: int,
                      repeats: int) -> None:  # fmt: skip
    """µs per update of the Kraken book sync on the guide's book plus ``extra`` levels a side."""
    from ttxt_mp.connectors.kraken.checksum import BookChecksum, checksum
    from ttxt_mp.connectors.kraken.sync import KrakenBookSync
    from ttxt_mp.events import Orderbook

    pd, qd = precision
    bids = snap.bids + tuple((45276.0 - 0.1 * k, 0.5) for k in range(extra))
    asks = snap.asks + tuple((45300.0 + 0.1 * k, 0.5) for k in range(extra))
    base = Orderbook(exchange="kraken", symbol="BTC/USD", is_snapshot=True, bids=bids, asks=asks)
    updates = []
    for i in range(N_VARIANTS):
        q = round(0.1 + i * 1e-8, 8)
        ev = Orderbook(exchange="kraken", symbol="BTC/USD", bids=((45283.5, q),))
        updates.append((ev, checksum(snap.asks, ((45283.5, q), *snap.bids[1:]), pd, qd)))
    sync = KrakenBookSync("BTC/USD", depth, BookChecksum(pd, qd))
    sync.on_event(base, checksum(asks, bids, pd, qd))
    nochk = KrakenBookSync("BTC/USD", depth, None)
    nochk.on_event(base, None)
    book, chk, k = sync.book, BookChecksum(pd, qd), len(updates)
    cases = [("sync.on_event (apply + truncate + checksum)",
              lambda i: sync.on_event(*updates[i % k])),
             ("  checksum alone (top 10 read + CRC32)",
              lambda i: chk.of(book.asks(10), book.bids(10))),
             ("sync without checksum (checksum = false)",
              lambda i: nochk.on_event(updates[i % k][0], None))]  # fmt: skip
    print(f"\nkraken book sync, depth {depth} ({len(bids)}+{len(asks)} levels), {n:,} updates, "
          f"median of {repeats}")  # fmt: skip
    for what, fn in cases:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(n):
                fn(i)
            times.append(time.perf_counter() - t0)
        print(f"  {what:<46} {1e6 * statistics.median(times) / n:6.2f} us/update")
    assert sync.resyncs == 0, sync.last_gap

# --------------------------------------------------------------------------- Coinbase


def coinbase_frames(doc, levels: int = 0) -> list[bytes]:
    """Variants of a documented Advanced Trade frame, each with the connection's next
    ``sequence_num``; ``levels``: an l2_data update of that many levels per side."""
    msg = msgspec.json.decode(doc.frame)
    out = []
    for i in range(N_VARIANTS):
        msg["sequence_num"] = i
        if levels:
            ev = msg["events"][0]
            ev["type"] = "update"
            ev["updates"] = [
                {"side": side, "event_time": msg["timestamp"],
                 "price_level": f"{21921.73 + (0.01 if side == 'offer' else -0.01) * k:.2f}",
                 "new_quantity": f"{0.001 * (k + i % 7):.3f}"}
                for side in ("bid", "offer") for k in range(levels)]  # fmt: skip
        out.append(msgspec.json.encode(msg))
    return out


def baseline_coinbase(frame: bytes):
    msg = json.loads(frame)
    out = []
    for e in msg["events"]:
        for u in e.get("updates", ()):
            out.append((u["side"], Decimal(u["price_level"]), Decimal(u["new_quantity"])))
        for t in e.get("trades", ()):
            out.append((t["side"], Decimal(t["price"]), Decimal(t["size"])))
        for t in e.get("tickers", ()):
            out.append((Decimal(t["best_bid"]), Decimal(t["best_ask"])))
        for c in e.get("candles", ()):
            out.append(tuple(Decimal(c[k]) for k in ("open", "high", "low", "close", "volume")))
    return out


def bench_coinbase(n: int, repeats: int, buf: bytearray) -> None:
    """Advanced Trade channels through a Coinbase normalizer (its per-connection
    ``sequence_num`` check included: every frame is the next one). No checksum exists on
    this venue; the level2 update is also timed through the connector's book sync."""
    from fixtures import coinbase_docs as cb

    from ttxt_mp.connectors.coinbase.normalizer import CoinbaseNormalizer
    from ttxt_mp.connectors.coinbase.sync import CoinbaseBookSync

    smap = {"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"}
    cases = [
        ("l2_data update (1+1 levels)", coinbase_frames(cb.LEVEL2, 1)),
        ("l2_data update (10+10 levels)", coinbase_frames(cb.LEVEL2, 10)),
        ("market_trades (doc)", coinbase_frames(cb.MARKET_TRADES)),
        ("ticker -> BookTicker (doc)", coinbase_frames(cb.TICKER)),
        ("candles (doc)", coinbase_frames(cb.CANDLES)),
        ("heartbeats (doc)", coinbase_frames(cb.HEARTBEATS)),
    ]  # fmt: skip
    for what, frames in cases:
        norm = CoinbaseNormalizer(smap)
        sync = CoinbaseBookSync("BTC/USD")
        sync.on_event(norm.normalize(coinbase_frames(cb.LEVEL2)[0], 0)[0])
        first = frames[0]

        def normalize(frame, norm=norm, sync=sync, first=first):
            if frame is first:  # the variants repeat: each pass counts as a new connection
                norm.sequence.reset()
                sync.book.update_id = -1
            return norm.normalize(frame, 0)

        def publish(frame, normalize=normalize):
            for ev in normalize(frame):
                layout_for(type(ev)).pack_into(buf, 0, ev)

        def only(frame, normalize=normalize):
            normalize(frame)

        def synced(frame, normalize=normalize, sync=sync):
            for ev in normalize(frame):
                for out in sync.on_event(ev):
                    layout_for(type(out)).pack_into(buf, 0, out)

        rows = [("ttxt_mp (decode+normalize+pack)", rate(publish, frames, n, repeats)),
                ("ttxt_mp normalize only", rate(only, frames, n, repeats))]  # fmt: skip
        if what.startswith("l2_data"):
            rows.append(("ttxt_mp + book sync + pack", rate(synced, frames, n, repeats)))
        rows.append(("json.loads + Decimal", rate(baseline_coinbase, frames, n, repeats)))
        print_table(f"coinbase {what}: {n:,} frames, median of {repeats}",
                    ("pipeline", "frames/s"), rows, "json.loads + Decimal")  # fmt: skip


if __name__ == "__main__":
    main()
