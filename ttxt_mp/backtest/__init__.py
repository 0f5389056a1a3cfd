"""Backtesting: the same strategy class on recorded data, orders matched against the replayed book."""
