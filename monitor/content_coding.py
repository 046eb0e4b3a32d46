"""Decode a response body's Content-Encoding incrementally, within a size and a ratio bound.

Core module, pure (zlib only). Every HTTP client of the monitor asks for `identity`, but a
server may compress anyway, and a few hundred bytes of gzip can expand to gigabytes. httpx
decodes whatever arrives, unbounded and in one go; `ContentDecoder` is used instead, on raw
bytes:

- decoded output never exceeds `limit` bytes in total (the rest is dropped and `truncated`
  set), and no single `feed` produces more, so memory and the time of one call are bounded
  by `limit` whatever the input;
- a body that expands more than `max_ratio` times its encoded size is refused
  (`DecompressionBombError`) once it has produced `RATIO_GRACE` bytes;
- at most `MAX_CODINGS` stacked codings (`gzip, gzip`) are decoded; more, or a coding the
  monitor cannot decode (`br`, `zstd`, `compress`), is `UnsupportedEncodingError`.

Callers read a body with `read_decoded`, which feeds chunk by chunk and awaits a pause between
chunks, so an event loop never runs one decode step longer than one chunk allows.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from monitor.untrusted import clean_line

MAX_CODINGS = 3
MAX_GZIP_MEMBERS = 64
"""gzip members in one body: servers that flush a member per write send a handful."""
DEFAULT_MAX_RATIO = 1000
"""Text and JSON compress 5-20x, very repetitive JSON ~100x; zlib's own maximum is ~1,030x."""
RATIO_GRACE = 64 * 1024
"""Output below this is never judged by its ratio (tiny bodies have arbitrary ratios)."""

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
_IDENTITY = frozenset({"", "identity"})


class ContentCodingError(Exception):
    """The body cannot be decoded; the message says why, for an endpoint's owner."""


class UnsupportedEncodingError(ContentCodingError):
    """A Content-Encoding the monitor does not decode (or too many stacked codings)."""


class DecompressionBombError(ContentCodingError):
    """The body expands more than the ratio bound allows."""


class CorruptEncodingError(ContentCodingError):
    """The compressed data is not valid for its declared coding."""


class _ZlibLayer:
    """One gzip or deflate layer: input is pushed in, output pulled out within a budget.

    gzip may hold several members; "deflate" may come with the zlib wrapper (RFC 9110) or as
    raw DEFLATE (as many servers send it), told apart by its first two bytes.
    """

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._decoder: Any = zlib.decompressobj(_GZIP) if coding == "gzip" else None
        self._pending = b""
        self._held = False
        """The last decompress filled its budget: zlib may hold output with no input left."""
        self._done = False
        """The stream ended: later input is counted and checked, never decoded nor kept."""
        self._padded = False
        """gzip: NUL padding followed the last member."""
        self.members = 1
        self.consumed = 0
        self.produced = 0

    def push(self, data: bytes) -> None:
        """Queue encoded input (after the end of the stream, only check it)."""
        if data:
            self.consumed += len(data)
            if self._done:
                self._after_end(data)
            else:
                self._pending += data

    def pull(self, budget: int) -> tuple[bytes, bool]:
        """Return (decoded output of at most `budget` bytes, whether any input was used)."""
        if self._decoder is None and not self._choose_deflate_format():
            return b"", False
        output: list[bytes] = []
        used = False
        while (self._pending or self._held) and budget > 0:
            data, self._pending = self._pending, b""
            try:
                chunk = self._decoder.decompress(data, budget)
            except zlib.error as exc:
                raise CorruptEncodingError(f"invalid {self.coding} data: {exc}") from exc
            used = True
            output.append(chunk)
            budget -= len(chunk)
            self._held = budget == 0 and not self._decoder.eof
            self._pending = self._decoder.unconsumed_tail
            if self._decoder.eof:
                # Never feed a finished decompressor: it keeps (and copies) all it is given.
                self._done = True
                self._after_end(self._decoder.unused_data)
        self.produced += sum(len(chunk) for chunk in output)
        return b"".join(output), used

    @property
    def used(self) -> int:
        """Input bytes decoded so far (fed bytes still waiting in the layer are not)."""
        return self.consumed - len(self._pending)

    def _after_end(self, data: bytes) -> None:
        """Ignore bytes after a deflate stream; after a gzip member, NULs or the next member."""
        if not data or self.coding != "gzip":
            return  # bytes after the stream are ignored
        if not data.strip(b"\x00"):
            self._padded = True
        elif self._padded:
            raise CorruptEncodingError("invalid gzip data: bytes after the NUL padding")
        else:
            self.members += 1
            if self.members > MAX_GZIP_MEMBERS:
                # Each member costs a decoder and a copy of what follows it: a stream of empty
                # members would cost CPU without ever producing output the bounds could see.
                raise CorruptEncodingError(f"more than {MAX_GZIP_MEMBERS} gzip members")
            self._decoder = zlib.decompressobj(_GZIP)  # the next gzip member
            self._done = False
            self._pending = data

    def _choose_deflate_format(self) -> bool:
        """Pick zlib-wrapped or raw deflate from the first two bytes; False until they came."""
        if len(self._pending) < 2:
            return False
        first, second = self._pending[0], self._pending[1]
        wrapped = first & 0x0F == 8 and first >> 4 <= 7 and (first << 8 | second) % 31 == 0
        self._decoder = zlib.decompressobj(_ZLIB if wrapped else _RAW_DEFLATE)
        return True

    def ended(self) -> bool:
        """Whether the stream reached its end (False: the body stopped in the middle)."""
        if self.consumed == 0:
            return True  # no body at all (HEAD, 204, 304 carry the header without one)
        return self._done


class ContentDecoder:
    """Decode one body: `feed` raw chunks, then `finish`; see the module docstring."""

    def __init__(
        self, content_encoding: str | None, *, limit: int, max_ratio: int = DEFAULT_MAX_RATIO
    ) -> None:
        """Prepare to decode `content_encoding` (the header value, None for none).

        Raises UnsupportedEncodingError for a coding it cannot decode.
        """
        codings = [
            coding.strip().lower()
            for coding in (content_encoding or "").split(",")
            if coding.strip().lower() not in _IDENTITY
        ]
        if len(codings) > MAX_CODINGS:
            raise UnsupportedEncodingError(
                f"{len(codings)} stacked content codings (at most {MAX_CODINGS} are decoded)"
            )
        layers: list[_ZlibLayer] = []
        for coding in reversed(codings):  # the last coding listed was applied last
            name = "gzip" if coding == "x-gzip" else coding
            if name not in ("gzip", "deflate"):
                shown = clean_line(coding, 40)
                raise UnsupportedEncodingError(f"Content-Encoding {shown!r} is not decoded")
            layers.append(_ZlibLayer(name))
        self.codings = tuple(codings)
        self._layers = layers
        self._limit = limit
        self._max_ratio = max_ratio
        self.consumed = 0
        """Encoded bytes fed so far."""
        self.produced = 0
        """Decoded bytes returned so far (at most `limit`)."""
        self.truncated = False
        """Whether decoded bytes beyond `limit` were dropped."""

    @property
    def encoded(self) -> bool:
        """Whether the body is encoded at all (False: feed returns its input unchanged)."""
        return bool(self._layers)

    def feed(self, data: bytes) -> bytes:
        """Return the decoded bytes `data` yields, never more than the limit leaves."""
        self.consumed += len(data)
        if self.truncated:
            return b""
        if not self._layers:
            return self._keep(data)
        self._layers[0].push(data)
        return self._keep(self._drain())

    def finish(self) -> bytes:
        """Return what the decoders still hold at the end of the body.

        Raises CorruptEncodingError when a compressed stream stopped before its end (a body
        cut short), unless the limit was reached first.
        """
        if self.truncated or not self._layers:
            return b""
        output = self._keep(self._drain())
        if not self.truncated:
            for layer in self._layers:
                if not layer.ended():
                    raise CorruptEncodingError(f"the {layer.coding} data ends before its end")
        return output

    def _drain(self) -> bytes:
        """Move data through every layer until the output budget is full or nothing moves.

        Every layer's output is bounded (the last by the room left, the others by the limit
        plus RATIO_GRACE and by the ratio), so the work of one call is bounded too, even for
        layers that turn much input into no output (empty gzip members).
        """
        room = self._limit - self.produced
        budget = room + 1  # one byte more than fits tells that the body went on
        output: list[bytes] = []
        size = 0
        while size <= room:
            moved = False
            for index, layer in enumerate(self._layers):
                last = index == len(self._layers) - 1
                chunk, used = layer.pull(budget - size if last else budget)
                moved = moved or used or bool(chunk)
                if last:
                    output.append(chunk)
                    size += len(chunk)
                else:
                    self._layers[index + 1].push(chunk)
                    self._check_layer(layer)
            if not moved:
                break
        return b"".join(output)

    def _keep(self, data: bytes) -> bytes:
        room = self._limit - self.produced
        if len(data) > room:
            data = data[: max(room, 0)]
            self.truncated = True
        self.produced += len(data)
        self._check_ratio()
        return data

    def _check_layer(self, layer: _ZlibLayer) -> None:
        """Refuse an inner layer that expands past the ratio or far past the limit."""
        if layer.produced < RATIO_GRACE:
            return
        if (
            layer.produced > self._max_ratio * max(layer.used, 1)
            or layer.produced > self._limit + RATIO_GRACE
        ):
            raise self._bomb()

    def _check_ratio(self) -> None:
        """Refuse output beyond the ratio of the input that made it.

        Judged against the bytes zlib used, not all bytes fed: a bomb fed in one large read
        would otherwise look mild while the rest of its input waits, unread, in the layer.
        """
        if not self._layers or self.produced < RATIO_GRACE:
            return
        if self.produced > self._max_ratio * max(self._layers[0].used, 1):
            raise self._bomb()

    def _bomb(self) -> DecompressionBombError:
        return DecompressionBombError(
            f"the {', '.join(self.codings)} body expands more than {self._max_ratio} times"
            " (a decompression bomb)"
        )


@dataclass(frozen=True)
class DecodedBody:
    """A body read and decoded within a limit (see `read_decoded`)."""

    body: bytes
    truncated: bool
    """The decoded body went on past `limit` (reading stopped there)."""
    error: ContentCodingError | None
    """Why the body could not be decoded as sent; `body` holds what was decoded before."""


async def read_decoded(
    chunks: AsyncIterable[bytes],
    content_encoding: str | None,
    *,
    limit: int,
    pause: Callable[[], Awaitable[None]],
) -> DecodedBody:
    """Decode raw `chunks` of a body within `limit` decoded bytes; stop reading at the limit.

    `pause` is awaited after every chunk: decoding is synchronous, and the next chunk may be
    buffered already, so without it one body could hold the caller's event loop. Never raises
    ContentCodingError: an unsupported coding, corrupt data or a bomb is the result's `error`.
    """
    try:
        decoder = ContentDecoder(content_encoding, limit=limit)
    except ContentCodingError as exc:
        return DecodedBody(b"", False, exc)
    parts: list[bytes] = []
    try:
        async for chunk in chunks:
            parts.append(decoder.feed(chunk))
            if decoder.truncated:
                return DecodedBody(b"".join(parts), True, None)
            await pause()
        parts.append(decoder.finish())
    except ContentCodingError as exc:
        return DecodedBody(b"".join(parts), decoder.truncated, exc)
    return DecodedBody(b"".join(parts), decoder.truncated, None)
