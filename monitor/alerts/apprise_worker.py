"""Run Apprise in a child process bounded in memory and time (edge: multiprocessing).

Apprise posts through `requests`, which asks for gzip and decodes a whole answer in memory
(260 KB sent become 256 MiB), and a plugin may block for good: a thread cannot be stopped.
So Apprise runs in one long-lived child process, started on the first notification with
"spawn" (never "fork": the service has threads and an event loop). It serves one notification
at a time over a pipe, under an address-space limit of `MEMORY_BOUND` (RLIMIT_AS). The
parent waits for its answer in a thread of its own, never on the event loop, for at most the
channel's timeout + `GRACE_S`; concurrent notifications queue for that thread. A child that
overstays is killed (SIGKILL); so is one that answers that Apprise gave up waiting (a plugin
thread may still hang in it) or ran out of memory (its heap is spoilt); one that dies is
reaped. Each of these is a retryable failure; the next notification starts a fresh child.

Secrets: an Apprise URL travels only through the pipe, never in argv or the environment.
The child keeps `apprise`, `requests` and `urllib3` at WARNING by itself, whatever the
parent's levels, and hands their warnings back as text, which the parent logs under the
same logger names: the parent's levels and redaction filter apply to them as if Apprise ran
in the parent. An answer's outcome names no URL and quotes no exception's message (only a
child that cannot start, before it was given any URL, says why). Messages are JSON, not
pickle: the parent never unpickles what a process that reads hostile answers sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from monitor.alerts.apprise_child import EXIT_MEMORY, MAX_RECORD_CHARS, MAX_RECORDS, serve
from monitor.alerts.delivery import DeliveryResult

MEMORY_BOUND = 512 * 1024 * 1024
"""The child's address space (RLIMIT_AS). Measured: Python with the monitor's modules (all of
them when started from the `monitor` script, which "spawn" imports again) and every Apprise
plugin maps 154-184 MiB after a delivery (67-97 MiB resident), 218-248 MiB at its peak while
Apprise's delivery thread sets up its malloc arena. 512 MiB is twice the largest figure, and
all a hostile answer can cost."""
GRACE_S = 5.0
"""Apprise gives up waiting for its plugin at the channel's timeout; the child is killed when
it has not answered this much later (loading the URL, a busy machine)."""
START_S = 60.0
"""Bound on starting a child (a fresh interpreter importing Apprise), on top of the timeout."""
STOP_S = 5.0
"""Wait for an idle child to exit after its pipe is closed, before it is killed."""
_MIB = 1024 * 1024
_MAX_ANSWER_BYTES = 256 * 1024
"""Room for `MAX_RECORDS` records even if every character is escaped as \\uXXXX."""


class AppriseWorker:
    """Deliver Apprise notifications through a child process, one at a time.

    `notify` never raises for a delivery problem; `aclose` stops the child (and must be
    called: the child is a daemon, so it also ends with the parent, but only then).
    """

    def __init__(
        self,
        *,
        memory_bytes: int = MEMORY_BOUND,
        grace_s: float = GRACE_S,
        start_s: float = START_S,
    ) -> None:
        self._memory_bytes = memory_bytes
        self._grace_s = grace_s
        self._start_s = start_s
        # One thread: the child serves one notification at a time, the others queue here.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apprise-worker")
        self._process: BaseProcess | None = None
        self._pipe: Connection | None = None
        self._busy = False
        self._closed = False

    @property
    def pid(self) -> int | None:
        """Return the child's process id, or None while there is no child."""
        process = self._process
        return None if process is None else process.pid

    async def notify(self, url: str, title: str, body: str, timeout_s: float) -> DeliveryResult:
        """Send one notification through Apprise within `timeout_s` (+ grace, + start-up)."""
        if self._closed:
            return DeliveryResult(False, False, None, "apprise worker stopped")
        request = json.dumps({"url": url, "title": title, "body": body, "timeout": timeout_s})
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        unusable = f"apprise cannot use this URL (scheme {scheme[:20]!r}): check the channel's url"
        loop = asyncio.get_running_loop()
        result, records = await loop.run_in_executor(
            self._executor, self._deliver, request.encode(), timeout_s, unusable
        )
        for name, level, text in records:
            logging.getLogger(name).log(level, "%s", text)
        return result

    async def aclose(self) -> None:
        """Stop the child: an idle one exits when its pipe closes; a busy one is killed."""
        if self._closed:
            return
        self._closed = True
        process = self._process
        if self._busy and process is not None:
            process.kill()  # its delivery ends now, as a retryable failure
        await asyncio.get_running_loop().run_in_executor(self._executor, self._stop)
        self._executor.shutdown(wait=False)  # its thread is idle: it ends at once

    # --- in the executor's thread -----------------------------------------------------------

    def _deliver(
        self, request: bytes, timeout_s: float, unusable: str
    ) -> tuple[DeliveryResult, list[tuple[str, int, str]]]:
        """Hand `request` to the child (starting one if needed) and wait for its answer."""
        self._busy = True
        try:
            if self._closed:
                return DeliveryResult(False, False, None, "apprise worker stopped"), []
            process, pipe = self._process, self._pipe
            if process is None or pipe is None or not process.is_alive():
                self._retire()  # one that died while idle is reaped, not blamed
                started = self._start()
                if isinstance(started, DeliveryResult):
                    return started, []
                process, pipe = started
            return self._exchange(process, pipe, request, timeout_s, unusable)
        finally:
            self._busy = False

    def _exchange(
        self,
        process: BaseProcess,
        pipe: Connection,
        request: bytes,
        timeout_s: float,
        unusable: str,
    ) -> tuple[DeliveryResult, list[tuple[str, int, str]]]:
        try:
            pipe.send_bytes(request)
        except OSError:  # it died since the check
            return self._died(), []
        ready = wait([pipe, process.sentinel], timeout_s + self._grace_s)
        if not ready:
            self._retire()
            return _timed_out(timeout_s), []
        try:
            answer = json.loads(pipe.recv_bytes(_MAX_ANSWER_BYTES))
            outcome = answer["outcome"]
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            return self._died(), []
        records = _records(answer.get("records"))
        if outcome == "delivered":
            return DeliveryResult(True, False, None, "delivered by apprise"), records
        if outcome == "unusable":
            return DeliveryResult(False, True, None, unusable), records
        if outcome == "failed":
            return DeliveryResult(False, False, None, "apprise reported failure"), records
        self._retire()  # a plugin thread may hang in it, or its heap is spoilt: start afresh
        if outcome == "timeout":
            return _timed_out(timeout_s), records
        if outcome == "memory":
            return self._exhausted(), records
        error = str(answer.get("error", "?"))[:60]
        return DeliveryResult(False, False, None, f"apprise raised {error}"), records

    def _start(self) -> tuple[BaseProcess, Connection] | DeliveryResult:
        """Start a child and wait until it is ready; return it, or the failure."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve, args=(theirs, self._memory_bytes), name="apprise-worker", daemon=True
        )
        try:
            process.start()
        except OSError as exc:  # no processes or memory left for one
            ours.close()
            return DeliveryResult(
                False, False, None, f"apprise worker could not start ({type(exc).__name__})"
            )
        finally:
            theirs.close()  # the child's end: only the child holds it now, so EOF means death
        self._process, self._pipe = process, ours
        ready = wait([ours, process.sentinel], self._start_s)
        if not ready:
            self._retire()
            detail = f"apprise worker did not start within {self._start_s:g} s"
            return DeliveryResult(False, False, None, detail)
        try:
            greeting = json.loads(ours.recv_bytes(_MAX_ANSWER_BYTES))
        except (OSError, EOFError, ValueError):
            return self._died()
        if greeting != {"ready": True}:
            self._retire()
            error = greeting.get("error") if isinstance(greeting, dict) else None
            detail = f"apprise worker could not start ({str(error)[:MAX_RECORD_CHARS]})"
            return DeliveryResult(False, False, None, detail)
        if self._closed:  # `aclose` came while it started
            self._retire()
            return DeliveryResult(False, False, None, "apprise worker stopped")
        return process, ours

    def _died(self) -> DeliveryResult:
        """Reap a child that died (or answered nonsense) and say how it ended."""
        process = self._process
        if process is not None:
            process.join(STOP_S)
        code = None if process is None else process.exitcode
        self._retire()
        if code == EXIT_MEMORY:
            return self._exhausted()
        if code is None:
            return DeliveryResult(False, False, None, "apprise worker sent an unreadable answer")
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return DeliveryResult(False, False, None, f"apprise worker died ({how})")

    def _exhausted(self) -> DeliveryResult:
        bound = f"{self._memory_bytes // _MIB} MiB"
        return DeliveryResult(
            False, False, None, f"apprise worker exceeded its memory bound ({bound})"
        )

    def _retire(self) -> None:
        """Kill the child if it still runs, reap it and close the pipe (no zombie is left)."""
        process, pipe = self._process, self._pipe
        self._process = self._pipe = None
        if pipe is not None:
            pipe.close()
        if process is not None:
            if process.exitcode is None:
                process.kill()
            process.join(STOP_S)  # after SIGKILL: at once
            if process.exitcode is not None:
                process.close()

    def _stop(self) -> None:
        """Close the pipe of an idle child so that it exits by itself; kill it if it lingers."""
        process, pipe = self._process, self._pipe
        if pipe is not None:
            pipe.close()
            self._pipe = None
        if process is not None:
            process.join(STOP_S)
        self._retire()


def _timed_out(timeout_s: float) -> DeliveryResult:
    return DeliveryResult(False, False, None, f"apprise delivery timed out after {timeout_s:g} s")


def _records(raw: object) -> list[tuple[str, int, str]]:
    """Return the child's log records that have the expected shape, bounded."""
    if not isinstance(raw, list):
        return []
    records = []
    for item in raw[:MAX_RECORDS]:
        if isinstance(item, list) and len(item) == 3:
            name, level, text = item
            if isinstance(name, str) and isinstance(level, int) and isinstance(text, str):
                records.append((name[:100], max(level, logging.WARNING), text[:MAX_RECORD_CHARS]))
    return records
