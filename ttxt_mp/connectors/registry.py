"""Exchange name -> connector class, so the engine builds connectors from config alone.

Classes are imported lazily: choosing ``bybit`` never imports the Binance modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ttxt_mp.config import ConnectorConfig
    from ttxt_mp.connectors.base import ConnectorBase
    from ttxt_mp.queues import IQueuePublisher

__all__ = ["CONNECTORS", "UnknownExchange", "connector_class", "create_connector"]

CONNECTORS: dict[str, str] = {
    "binance": "ttxt_mp.connectors.binance.connector:BinanceConnector",
    "bybit": "ttxt_mp.connectors.bybit.connector:BybitConnector",
}


class UnknownExchange(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def connector_class(exchange: str) -> type[ConnectorBase]:
    """The connector class of ``exchange`` (lower case, as in the config)."""
    try:
        target = CONNECTORS[exchange]
    except KeyError:
        raise UnknownExchange(
            f"no connector for exchange {exchange!r}; known: {', '.join(sorted(CONNECTORS))}"
        ) from None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def create_connector(
    cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any
) -> ConnectorBase:
    """``connector_class(cfg.exchange)(cfg, publisher, **kwargs)``."""
    return connector_class(cfg.exchange)(cfg, publisher, **kwargs)
