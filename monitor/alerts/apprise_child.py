"""The Apprise child process: serve notifications from a pipe under a memory bound (apprise).

Started by `monitor.alerts.apprise_worker` (see there for why and how); `serve` is its main.
Only this process imports Apprise. It keeps `apprise`, `requests` and `urllib3` at WARNING by
itself (they log URLs with their tokens below it, see `monitor.cli.configure_logging`) and
writes nothing to stderr: warnings go back to the parent with the answer.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import apprise

MAX_RECORDS = 20
"""Warnings handed back per notification; more are dropped."""
MAX_RECORD_CHARS = 500
EXIT_MEMORY = 75
"""The exit status when memory runs out where no answer can be sent."""
_QUIET = ("apprise", "requests", "urllib3")


def serve(pipe: Connection, memory_bytes: int) -> None:
    """Serve notifications from the pipe until the parent closes it: the child's main.

    Never raises (a traceback could quote a URL; the parent learns all it needs from the
    answers and the exit status) and never returns: it ends the process with `os._exit`,
    which waits for no thread (a plugin's, say) and writes nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent stops us
    records = _KeptRecords()
    try:
        _quiet_logging(records)
        _limit_memory(memory_bytes)
        import apprise  # only the child imports it, under the bound

        apprise.Apprise().add("json://localhost")  # load the plugins now, under the bound too
        pipe.send_bytes(json.dumps({"ready": True}).encode())
    except MemoryError:
        os._exit(EXIT_MEMORY)
    except Exception as exc:  # cannot start (out of room for a library, say): no URL yet to leak
        _answer(pipe, {"error": f"{type(exc).__name__}: {exc}"[:MAX_RECORD_CHARS]})
        os._exit(1)
    while True:
        try:
            request = json.loads(pipe.recv_bytes())
        except (EOFError, OSError):
            os._exit(0)  # the parent closed the pipe, or died
        except MemoryError:
            os._exit(EXIT_MEMORY)
        except ValueError:
            request = None
        answer: dict[str, Any]
        try:
            answer = _notify(apprise.Apprise, request, records)
        except MemoryError:
            answer = {"outcome": "memory"}
        except Exception as exc:  # a defect (or Apprise's): the class only
            answer = {"outcome": "error", "error": type(exc).__name__}
        answer["records"] = records.take()
        if not _answer(pipe, answer):
            os._exit(0)


def _answer(pipe: Connection, answer: dict[str, Any]) -> bool:
    """Send `answer`; return False when the parent is gone."""
    try:
        pipe.send_bytes(json.dumps(answer).encode())
    except MemoryError:
        os._exit(EXIT_MEMORY)
    except OSError:
        return False
    return True


def _notify(
    new_apprise: type[apprise.Apprise], request: Any, records: _KeptRecords
) -> dict[str, Any]:
    """Notify once as `request` says; return the outcome."""
    records.take()  # what was logged between notifications belongs to none
    instance = new_apprise()
    if not instance.add(request["url"]):
        return {"outcome": "unusable"}
    exhausted = _watch_memory(instance)
    result = instance.notify(
        body=request["body"], title=request["title"], timeout=request["timeout"]
    )
    if result:
        return {"outcome": "delivered"}
    if exhausted:
        return {"outcome": "memory"}
    if getattr(result, "timeout_count", 0):
        return {"outcome": "timeout"}
    return {"outcome": "failed"}


def _watch_memory(instance: apprise.Apprise) -> list[bool]:
    """Return a list that gets an item when a plugin runs out of memory.

    Apprise catches every exception of a plugin, MemoryError included, and reports a plain
    failure: each plugin's `notify` is wrapped to notice it first.
    """
    exhausted: list[bool] = []
    for service in instance:
        plugin_notify = service.notify

        def watched(*args: Any, _notify: Any = plugin_notify, **kwargs: Any) -> Any:
            try:
                return _notify(*args, **kwargs)
            except MemoryError:
                exhausted.append(True)
                raise

        setattr(service, "notify", watched)  # noqa: B010 - on this instance, not its class
    return exhausted


def _limit_memory(memory_bytes: int) -> None:
    """Bound this process's address space (never above a hard limit inherited)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    bound = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (bound, bound))


class _KeptRecords(logging.Handler):
    """Keep the warnings of one notification, as text, to hand them to the parent."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._kept: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's name, level and message (no traceback), if room is left."""
        if len(self._kept) >= MAX_RECORDS:
            return
        try:
            text = record.getMessage()
        except Exception:  # a library's bad format string
            text = str(record.msg)
        self._kept.append((record.name[:100], record.levelno, text[:MAX_RECORD_CHARS]))

    def take(self) -> list[tuple[str, int, str]]:
        """Return the records kept so far and forget them."""
        self.acquire()  # `emit` runs under it, in Apprise's threads
        try:
            kept, self._kept = self._kept, []
        finally:
            self.release()
        return kept


def _quiet_logging(records: _KeptRecords) -> None:
    """Log nothing below WARNING, keep the rest for the parent, write nothing to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(records)
    root.setLevel(logging.WARNING)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # urllib3's warnings too go to the parent, not stderr
