"""The HTTP client both facilitator calls share: JSON, bounded, no environment credentials."""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Self

import httpx

MAX_REDIRECTS = 3


class JsonClientOwner:
    """Own one `httpx.AsyncClient` for JSON GETs to operator-chosen hosts; async context manager.

    The client ignores the environment (no proxy or netrc credentials), follows at most
    MAX_REDIRECTS redirects, sends `Accept: application/json` and an honest User-Agent, and asks
    for identity encoding because httpx does not bound how far one compressed chunk expands.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: timedelta,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(timeout.total_seconds()),
            trust_env=False,
            headers={
                "Accept": "application/json",
                "User-Agent": user_agent,
                "Accept-Encoding": "identity",
            },
        )

    async def __aenter__(self) -> Self:
        """Open the shared client."""
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the shared client and its connections."""
        await self._client.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the shared client (for use without `async with`)."""
        await self._client.aclose()
