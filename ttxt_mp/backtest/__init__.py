"""Backtesting: the same strategy class on recorded data, orders matched against the replayed book."""


def __getattr__(name: str):  # Backtest and Latency without importing numpy & co up front
    if name in ("Backtest", "Latency"):
        from ttxt_mp.backtest import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'ttxt_mp.backtest' has no attribute {name!r}")
