"""The HTTP client both facilitator calls share: JSON GETs bounded in time, bytes, depth and text.

`JsonClientOwner.get_body` (bytes) and `get_json` (a document) are the one way `/supported`
and catalogue pages are read. httpx would decode any Content-Encoding a server sends in one
synchronous step per chunk, without a bound (a few KB of stacked gzip expand to gigabytes and
stall the event loop for seconds), and it reads a redirect's whole body before following it.
So here redirects are followed hop by hop without reading their bodies, and the final body is
read raw and decoded by `ContentDecoder` chunk by chunk within the caller's byte limit and a
ratio bound, yielding to the event loop between chunks. The JSON is parsed in a worker thread,
bounded in values and depth, and its text cleaned (lone surrogates, control characters and
bytes that are not UTF-8 replaced by U+FFFD) once, here, where it enters the monitor.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Self

import httpx

from monitor.content_coding import read_decoded
from monitor.models import JsonValue, MonitorError
from monitor.untrusted import clean_line
from monitor.x402.transport import JsonTooLargeError, loads_bounded

MAX_REDIRECTS = 3
MAX_JSON_VALUES = 250_000
"""Most JSON values (counted as objects, arrays and commas) parsed from one answer. Parsing
time and memory follow the number of values, not bytes: 4 MiB of `{},` is 1.4 million
objects, ~100 MB and seconds of CPU. A catalogue page of 100 real items has a few thousand."""
MAX_DETAIL_CHARS = 200
"""Longest error detail: details may quote what a server sent (a Content-Encoding value)."""

_CHUNK = 64 * 1024


class AnswerError(MonitorError):
    """A 200 answer's body cannot be used; the message (one bounded line) says why.

    `reason` is stable: "too-large" (over the caller's byte limit once decoded),
    "bad-encoding" (a Content-Encoding that is not decoded, corrupt, or a decompression bomb),
    "bad-json" (not JSON, or nested too deep).
    """

    def __init__(self, reason: str, detail: str) -> None:
        detail = clean_line(detail, MAX_DETAIL_CHARS)
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Answer:
    """The final answer of a GET after redirects; `body` (decoded) is read only for a 200."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes | None


@dataclass(frozen=True)
class JsonAnswer:
    """The final answer of a GET after redirects; `document` is the cleaned JSON of a 200.

    `document` is None for any other status (the body of an error is not read).
    """

    url: str
    status: int
    headers: httpx.Headers
    document: JsonValue


class JsonClientOwner:
    """Own one `httpx.AsyncClient` for JSON GETs to operator-chosen hosts; async context manager.

    The client ignores the environment (no proxy or netrc credentials), sends
    `Accept: application/json`, an honest User-Agent and `Accept-Encoding: identity`
    (compressed answers are still decoded, within bounds). `timeout` bounds each read and,
    in `get_body`/`get_json`, the whole answer with all its redirects.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: timedelta,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._answer_timeout = timeout.total_seconds()
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,  # followed by get_body, which never reads a redirect's body
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

    async def get_json(
        self, url: str, *, max_bytes: int, params: Mapping[str, str | int] | None = None
    ) -> JsonAnswer:
        """GET `url` like `get_body`; return a 200's body as cleaned JSON (`json_document`).

        Raises what `get_body` raises, AnswerError "bad-json" for a body that is not JSON and
        "too-large" for one of more than MAX_JSON_VALUES values.
        """
        answer = await self.get_body(url, max_bytes=max_bytes, params=params)
        document = None
        if answer.body is not None:
            # Parsing megabytes takes tenths of a second: in a thread, the event loop runs on.
            document = await asyncio.to_thread(json_document, answer.body)
        return JsonAnswer(answer.url, answer.status, answer.headers, document)

    async def get_body(
        self, url: str, *, max_bytes: int, params: Mapping[str, str | int] | None = None
    ) -> Answer:
        """GET `url`, following up to MAX_REDIRECTS redirects; read and decode a 200's body.

        The body is decoded from its Content-Encoding incrementally and refused beyond
        `max_bytes` decoded bytes. Raises AnswerError ("too-large", "bad-encoding"),
        TimeoutError when the whole answer takes longer than the timeout,
        httpx.TooManyRedirects, and other httpx.HTTPError for transport failures.
        """
        async with asyncio.timeout(self._answer_timeout):
            request = self._client.build_request("GET", url, params=params)
            for _ in range(MAX_REDIRECTS + 1):
                response = await self._client.send(request, stream=True, follow_redirects=False)
                try:
                    if response.next_request is None:
                        body = None
                        if response.status_code == 200:
                            body = await read_answer_body(response, max_bytes)
                        return Answer(
                            str(response.url), response.status_code, response.headers, body
                        )
                    request = response.next_request
                finally:
                    await response.aclose()  # an unread body closes its connection
            raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)


async def read_answer_body(response: httpx.Response, limit: int) -> bytes:
    """Read a streamed response's raw body and decode it within `limit` bytes, chunk by chunk.

    Raises AnswerError "too-large" once the decoded body exceeds `limit`, "bad-encoding" for a
    Content-Encoding that cannot be decoded (unknown coding, corrupt data, a bomb).
    """
    too_large = AnswerError("too-large", f"answer larger than {limit} bytes")
    try:
        content = response.content  # a transport that answered from memory (tests)
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit:
            raise too_large
        return content
    read = await read_decoded(
        response.aiter_raw(_CHUNK),
        response.headers.get("content-encoding"),
        limit=limit,
        pause=functools.partial(asyncio.sleep, 0),
    )
    if read.error is not None:
        raise AnswerError("bad-encoding", str(read.error))
    if read.truncated:
        raise too_large
    return read.body


def json_document(body: bytes) -> JsonValue:
    """Return `body` parsed as JSON, depth-bounded, with every string cleaned.

    `loads_bounded` bounds the nesting (`MAX_JSON_DEPTH`), reads over-long integers as floats
    (±infinity beyond the float range, as `1e400`) and cleans every string and key
    (`monitor.untrusted.clean_json`). Bytes that are not UTF-8 become U+FFFD first, as lone
    surrogates do, so one bad string does not make a whole catalogue page unreadable.
    Raises AnswerError "too-large" for more than MAX_JSON_VALUES values, "bad-json" for
    anything else that is not JSON.
    """
    text = body.decode("utf-8-sig", errors="replace")
    # An upper bound (brackets and commas inside strings count too), cheap to take first.
    if text.count(",") + text.count("{") + text.count("[") > MAX_JSON_VALUES:
        raise AnswerError("too-large", f"answer holds more than {MAX_JSON_VALUES} JSON values")
    try:
        return loads_bounded(text, max_values=MAX_JSON_VALUES)
    except JsonTooLargeError:
        problem = f"answer holds more than {MAX_JSON_VALUES} JSON values"
        raise AnswerError("too-large", problem) from None
    except ValueError as exc:  # JSONDecodeError, JsonTooDeepError, NaN and Infinity
        raise AnswerError("bad-json", f"answer is not JSON: {exc}") from None
