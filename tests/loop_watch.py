"""Measure how long the running event loop is kept from its other tasks, on a busy machine too.

A 10 ms ticker runs beside the work and records, between two ticks, the CPU time the loop's
thread spent (`time.thread_time`). A loop blocked by synchronous work (decoding a bomb in one
step, parsing a huge document) burns that CPU time itself, however busy the machine is; a
process the OS did not schedule for a while burns none, so a busy CI machine does not look
like a stalled loop. Work done in other threads is not counted: it does not block the loop.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

TICK_S = 0.01


class LoopWatch:
    """Run a ticker beside the work in `async with`; `longest_stall_s` is then known."""

    def __init__(self) -> None:
        self.longest_stall_s = 0.0
        """The most CPU time the loop's thread spent between two ticks, in seconds."""
        self._stop = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopWatch:
        self._ticker = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # the ticker takes its first reading before the work starts
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._ticker is not None
        self._stop.set()
        await self._ticker

    async def _tick(self) -> None:
        last = time.thread_time()
        while not self._stop.is_set():
            await asyncio.sleep(TICK_S)
            now = time.thread_time()
            self.longest_stall_s = max(self.longest_stall_s, now - last)
            last = now
