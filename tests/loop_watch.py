"""Measure how long the running event loop is kept from its other tasks, on a busy machine too.

A 10 ms ticker runs beside the work and records, between two ticks, the CPU time the loop's
thread spent (`time.thread_time`). A loop blocked by synchronous work (decoding a bomb in one
step, parsing a huge document) burns that CPU time itself, however busy the machine is; a
process the OS did not schedule for a while burns none, so a busy CI machine does not look
like a stalled loop. Work done in other threads is not counted: it does not block the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

TICK_S = 0.01


@dataclass
class LoopWatch:
    """What the ticker saw; complete once the `async with` block has ended."""

    longest_stall_s: float = 0.0
    """The most CPU time the loop's thread spent between two ticks, in seconds."""
    ticks: int = 0
    """How many times the ticker ran: the loop went on with other tasks that often."""


@contextlib.asynccontextmanager
async def watching_the_loop() -> AsyncIterator[LoopWatch]:
    """Run a ticker beside the body of `async with`; yield what it sees."""
    watch = LoopWatch()
    stop = asyncio.Event()

    async def tick() -> None:
        last = time.thread_time()
        while not stop.is_set():
            await asyncio.sleep(TICK_S)
            now = time.thread_time()
            watch.longest_stall_s = max(watch.longest_stall_s, now - last)
            watch.ticks += 1
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # the ticker takes its first reading before the work starts
    try:
        yield watch
    finally:
        stop.set()
        await ticker
