"""Exchange connectors: one package per venue (normalizer, order book sync, connector)."""
