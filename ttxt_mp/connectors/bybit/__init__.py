"""Bybit v5 public market data connector package."""
