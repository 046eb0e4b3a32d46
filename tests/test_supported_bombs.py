"""FacilitatorClient reads /supported through the bounded JSON client: a bomb costs nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hostile_http import (
    BOMB_IDS,
    BOMBS,
    LIMIT,
    Body,
    Route,
    Serve,
    assert_bounded,
    watched,
)

from monitor.discovery import FacilitatorClient, SupportedResult


def _clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("coding", "body"), BOMBS, ids=BOMB_IDS)
def test_a_supported_bomb_is_an_unusable_answer_in_bounded_memory(
    serve: Serve, coding: str, body: Body
) -> None:
    server = serve({"/f/supported": Route(headers={"Content-Encoding": coding}, body=body)})
    client = FacilitatorClient(user_agent="test", clock=_clock, max_bytes=LIMIT)

    async def fetch() -> SupportedResult:
        async with client:
            return await client.supported(server.base_url + "/f")

    outcome = watched(fetch)
    assert_bounded(outcome)
    result = outcome.result
    assert result.reachable
    assert result.supported is not None
    codes = [finding.code for finding in result.supported.findings]
    assert codes in (["supported-too-large"], ["supported-not-json"])
    assert result.error in ("body too large", "undecodable body")
