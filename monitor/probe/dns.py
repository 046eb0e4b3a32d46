"""Resolve probe targets: a thread pool of their own, one lookup per name at a time, a short cache.

Part of the probe edge. The system resolver blocks a thread per lookup, and a lame name server
keeps it for 10-30 s after the probe's connect budget gave up. asyncio's `getaddrinfo` uses the
loop's default executor, which the store, the site render and the catalogue share: a handful
of dead domains in a catalogue would stall every save. Here lookups have their own bounded
pool, concurrent lookups of one name share one answer (a host lists ~10 endpoints on average),
and answers are kept briefly (`POSITIVE_TTL`, failures `NEGATIVE_TTL`) in a bounded cache. The
address policy still judges every address, cached or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

LOOKUP_THREADS = 32
"""Lookups in flight at once; more wait for a thread (within their connect budget)."""
POSITIVE_TTL = 60.0
"""Seconds an answer is reused (as browsers do; the system resolver may cache longer)."""
NEGATIVE_TTL = 10.0
"""Seconds a failed lookup is remembered, so one dead name costs one thread per window."""
MAX_CACHED = 10_000
"""Names kept; the least recently used goes first."""

Answer = list[str] | socket.gaierror


class CachingResolver:
    """Resolve (host, port) to addresses; an instance is a `Resolver` (see connect.py)."""

    def __init__(
        self, *, threads: int = LOOKUP_THREADS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threads = threads
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._cache: OrderedDict[tuple[str, int], tuple[float, Answer]] = OrderedDict()
        self._pending: dict[tuple[str, int], asyncio.Future[Answer]] = {}
        self.lookups = 0
        """System lookups started (tests and figures)."""

    async def __call__(self, host: str, port: int) -> list[str]:
        """Return the distinct addresses `host` resolves to (an IP literal resolves to itself).

        Raises `socket.gaierror` when the name does not resolve, including names that are not
        valid host names at all (an empty label, a label over 63 characters).
        """
        literal = host[1:-1] if host.startswith("[") else host
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(literal))]  # no lookup for an IP literal
        key = (host.lower(), port)
        answer = self._cached(key)
        if answer is None:
            pending = self._pending.get(key)
            if pending is None:
                pending = asyncio.ensure_future(self._lookup(key))
                self._pending[key] = pending
                pending.add_done_callback(lambda _: self._pending.pop(key, None))
            # Shielded: one caller giving up (its budget ran out) must not cancel the others'.
            answer = await asyncio.shield(pending)
        if isinstance(answer, socket.gaierror):
            raise answer
        return list(answer)

    def _cached(self, key: tuple[str, int]) -> Answer | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, answer = entry
        if expires <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return answer

    async def _lookup(self, key: tuple[str, int]) -> Answer:
        host, port = key
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="dns")
        self.lookups += 1
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.run_in_executor(self._pool, _getaddrinfo, host, port)
        except socket.gaierror as exc:
            answer: Answer = exc
            ttl = NEGATIVE_TTL
        except UnicodeError as exc:  # IDNA refuses the name before any lookup
            answer = socket.gaierror(socket.EAI_NONAME, f"invalid host name ({exc})")
            answer.__cause__ = exc
            ttl = NEGATIVE_TTL
        else:
            answer = list(dict.fromkeys(infos))
            ttl = POSITIVE_TTL
        self._cache[key] = (self._clock() + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
        return answer


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


resolve = CachingResolver()
"""The process's resolver (every prober shares its pool and cache)."""
