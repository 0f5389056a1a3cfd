"""Binance Spot (and USDⓈ-M futures diff depth) connector package."""
