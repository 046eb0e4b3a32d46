"""The probe's resolver: its own thread pool, one lookup per name at a time, a short cache.

The system lookup is replaced by a function the test controls (`monitor.probe.dns._getaddrinfo`
through monkeypatch), so a lame name server is a lookup that waits for an event.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from monitor.probe import dns
from monitor.probe.dns import NEGATIVE_TTL, POSITIVE_TTL, CachingResolver

WAIT_S = 30.0


class Lookups:
    """A stand-in system resolver: counts lookups, can hold them, can fail for some names."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.failing: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.calls.append(host)
        assert self.release.wait(WAIT_S), "a held lookup was never released"
        if host in self.failing:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return ["93.184.216.34", "93.184.216.34", "2606:2800:220:1::1"]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lookups]:
    fake = Lookups()
    monkeypatch.setattr(dns, "_getaddrinfo", fake)
    yield fake
    fake.release.set()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("host", ["93.184.216.34", "[2606:2800:220:1::1]", "2606:2800:220:1::1"])
def test_an_ip_literal_needs_no_lookup(lookups: Lookups, host: str) -> None:
    assert asyncio.run(CachingResolver()(host, 443)) == [host.strip("[]")]
    assert lookups.calls == []


def test_addresses_are_distinct_in_the_order_given(lookups: Lookups) -> None:
    answer = asyncio.run(CachingResolver()("seller.test", 443))
    assert answer == ["93.184.216.34", "2606:2800:220:1::1"]


def test_concurrent_lookups_of_one_name_share_one(lookups: Lookups) -> None:
    resolver = CachingResolver()

    async def go() -> list[list[str]]:
        lookups.release.clear()
        waiting = [asyncio.create_task(resolver("seller.test", 443)) for _ in range(20)]
        while not lookups.calls:
            await asyncio.sleep(0.01)
        lookups.release.set()
        return await asyncio.gather(*waiting)

    answers = asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert lookups.calls == ["seller.test"]
    assert all(answer == answers[0] for answer in answers)


def test_answers_and_failures_are_kept_for_their_ttl(lookups: Lookups) -> None:
    clock = Clock()
    resolver = CachingResolver(clock=clock)
    lookups.failing.add("dead.test")

    async def go() -> None:
        await resolver("seller.test", 443)
        await resolver("SELLER.test", 443)
        for _ in range(2):
            with pytest.raises(socket.gaierror):
                await resolver("dead.test", 443)
        assert lookups.calls == ["seller.test", "dead.test"]
        clock.now += NEGATIVE_TTL
        with pytest.raises(socket.gaierror):
            await resolver("dead.test", 443)
        await resolver("seller.test", 443)
        assert lookups.calls == ["seller.test", "dead.test", "dead.test"]
        clock.now += POSITIVE_TTL
        await resolver("seller.test", 443)
        assert lookups.calls[-1] == "seller.test"

    asyncio.run(go())


def test_the_cache_is_bounded(lookups: Lookups, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns, "MAX_CACHED", 3)
    resolver = CachingResolver()

    async def go() -> None:
        for n in range(5):
            await resolver(f"h{n}.test", 443)
        await resolver("h0.test", 443)  # pushed out by the three after it

    asyncio.run(go())
    assert lookups.calls == [f"h{n}.test" for n in range(5)] + ["h0.test"]


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example"])
def test_a_name_that_is_no_host_name_is_a_dns_error(host: str) -> None:
    with pytest.raises(socket.gaierror, match="invalid host name"):
        asyncio.run(CachingResolver()(host, 80))


def test_lame_lookups_never_hold_the_threads_the_store_uses(lookups: Lookups) -> None:
    # Unfixed, lookups ran in the loop's default executor: a few hanging ones stalled every
    # save, render and due-query (asyncio.to_thread) behind them.
    resolver = CachingResolver(threads=4)

    async def go() -> None:
        lookups.release.clear()
        hanging = [asyncio.create_task(resolver(f"lame{n}.test", 80)) for n in range(8)]
        while len(lookups.calls) < 4:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.to_thread(lambda: None), WAIT_S / 3)
        lookups.release.set()
        await asyncio.gather(*hanging)

    asyncio.run(asyncio.wait_for(go(), WAIT_S))


def test_a_caller_that_gives_up_does_not_cancel_the_others(lookups: Lookups) -> None:
    resolver = CachingResolver()

    async def go() -> list[str]:
        lookups.release.clear()
        impatient = asyncio.create_task(resolver("seller.test", 443))
        patient = asyncio.create_task(resolver("seller.test", 443))
        while not lookups.calls:
            await asyncio.sleep(0.01)
        impatient.cancel()
        lookups.release.set()
        return await patient

    assert asyncio.run(asyncio.wait_for(go(), WAIT_S)) == ["93.184.216.34", "2606:2800:220:1::1"]
