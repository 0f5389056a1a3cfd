"""Exchange name -> connector class, so the engine builds connectors from config alone.

The venue registry (:mod:`ttxt_mp.connectors.venue`) says where each venue's connector
lives; classes are imported lazily, so choosing one venue never imports another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ttxt_mp.connectors.venue import UnknownVenue, venue

if TYPE_CHECKING:
    from ttxt_mp.config import ConnectorConfig
    from ttxt_mp.connectors.base import ConnectorBase
    from ttxt_mp.queues import IQueuePublisher

__all__ = ["UnknownExchange", "connector_class", "create_connector"]

UnknownExchange = UnknownVenue


def connector_class(exchange: str, market: str = "spot") -> type[ConnectorBase]:
    """The connector class of ``exchange`` (lower case, as in the config) for ``market``."""
    spec = venue(exchange)
    try:
        return spec.for_market(market).load("connector")
    except LookupError as e:
        if market not in spec.markets:
            raise UnknownExchange(str(e).strip("'\"")) from None
        raise UnknownExchange(f"venue {spec.for_market(market).label!r} has no market-data "
                              "connector") from None  # fmt: skip


def create_connector(
    cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any
) -> ConnectorBase:
    """``connector_class(cfg.exchange, cfg.market)(cfg, publisher, **kwargs)``."""
    return connector_class(cfg.exchange, cfg.market)(cfg, publisher, **kwargs)
