"""Capture every record of every logger, the libraries' included, at the lowest level there is."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator


class Capture(logging.StreamHandler[io.StringIO]):
    """A root handler that keeps every record it is given, as `LEVEL logger: message` lines."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.setLevel(1)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def getvalue(self) -> str:
        return self.stream.getvalue()


@contextlib.contextmanager
def every_record() -> Iterator[Capture]:
    """Capture every record at level 1 and up; restore the loggers' levels afterwards.

    Every logger that exists is set to inherit the root's level (whatever an earlier test
    set), and the root to 1, below DEBUG and Apprise's TRACE.
    """
    handler = Capture()
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(logger, logger.level) for logger in [root, *loggers]]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(1)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in saved:
            logger.setLevel(level)
