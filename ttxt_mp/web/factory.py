"""WebAssistantFactory: hands out WS and REST assistants sharing one session and limiter."""

from __future__ import annotations

import random

from .connection_factory import ConnectionFactory
from .rate_limit import RateLimiter
from .rest_assistant import RESTAssistant, RetryPolicy, Signer
from .ws_assistant import WSAssistant


class WebAssistantFactory:
    """One per connector: its assistants share the process session, limits and signer."""

    def __init__(
        self,
        connection_factory: ConnectionFactory | None = None,
        *,
        rate_limiter: RateLimiter | None = None,
        signer: Signer | None = None,
        rest_base_url: str = "",
        retry: RetryPolicy | None = None,
        rest_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.connection_factory = connection_factory or ConnectionFactory.default()
        self.rate_limiter = rate_limiter
        self.signer = signer
        self._rest_base_url = rest_base_url
        self._retry = retry
        self._rest_timeout = rest_timeout
        self._rng = rng
        self._rest: RESTAssistant | None = None

    def get_ws_assistant(self) -> WSAssistant:
        """A new WSAssistant (one per stream)."""
        return WSAssistant(self.connection_factory)

    def get_rest_assistant(self) -> RESTAssistant:
        """The factory's RESTAssistant (one is enough: it holds no per-call state)."""
        if self._rest is None:
            self._rest = RESTAssistant(
                self.connection_factory,
                base_url=self._rest_base_url,
                rate_limiter=self.rate_limiter,
                signer=self.signer,
                retry=self._retry,
                timeout=self._rest_timeout,
                rng=self._rng,
            )
        return self._rest

    async def close(self) -> None:
        """Close the shared session (WS assistants should be disconnected first)."""
        await self.connection_factory.close()
