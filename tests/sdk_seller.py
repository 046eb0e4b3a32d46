"""A real x402 seller built with the official Python SDK (`x402` 2.25.0), offline on loopback.

Not a test module: a helper for integration tests. `start_sdk_seller()` starts two servers on
127.0.0.1, each on a free port in a daemon thread:

- a stub facilitator (stdlib `http.server`): `GET /supported` answers a v2 document listing
  `{x402Version: 2, scheme: "exact", network: "eip155:84532"}` with `extensions: []` and
  `signers: {"eip155:*": [...]}`; `POST /verify` and `POST /settle` answer a well-formed refusal
  (`isValid: false` / `success: false`). The monitor never pays, so nothing should call them:
  every request is counted by path in `SdkSeller.facilitator_calls`.
- a FastAPI app served by uvicorn, protected by the SDK's own payment middleware
  (`x402.http.middleware.fastapi.payment_middleware`) over an `x402ResourceServer` with an
  `HTTPFacilitatorClient` pointed at the stub and `ExactEvmServerScheme` registered for
  `eip155:84532`. Paid routes: `GET /weather` and `POST /report` (the SDK matches
  `"VERB /path"` route keys per method). A price in dollars ("$0.001") makes the SDK pick
  Base Sepolia USDC from its own default asset table, with its EIP-712 domain in `extra`.

What the SDK needs to work offline, and the workarounds used:

1. It must fetch the facilitator's `/supported` before it can build any 402 (otherwise every
   protected request answers 500): hence the stub facilitator, started first.
2. The middleware's own start-up initialisation (`sync_facilitator_on_start=True`) calls
   `os._exit(1)` on a capability or route mismatch (`x402/http/background_init.py`), which would
   kill the whole pytest process without a report. So the seller initialises the SDK itself
   first, through `x402HTTPResourceServer(server, routes).initialize()` (same /supported fetch
   and route validation, but a mismatch raises a normal exception), and then installs the
   middleware with `sync_facilitator_on_start=False` over the already-initialised
   `x402ResourceServer`. Consequence: the stub sees exactly one `GET /supported`.
3. Importing `x402.mechanisms.evm` imports `py_ecc`, which raises `sys.setrecursionlimit` to
   100000 on import; in a shared pytest process that turns other tests' expected
   RecursionError (deeply nested JSON) into a segfault. This module restores the limit.
4. Nothing else: no RPC, no signing, no internet. The SDK's facilitator client uses httpx with
   the environment's proxy settings; loopback addresses are not proxied by default.
"""

from __future__ import annotations

import collections
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient, PaymentOption, RouteConfig
from x402.http.middleware.fastapi import payment_middleware
from x402.http.x402_http_server import x402HTTPResourceServer

# The SDK's EVM stack imports `py_ecc`, whose `__init__` raises the interpreter's recursion limit
# to 100000 for good. Any later test that relies on RecursionError (deeply nested JSON, e.g.
# `b"[" * 100_000`) would then overflow the C stack and crash pytest with a segfault instead.
# Restore the limit: the seller never runs py_ecc's recursive pairing code.
_RECURSION_LIMIT = sys.getrecursionlimit()
from x402.mechanisms.evm.exact import ExactEvmServerScheme  # noqa: E402

sys.setrecursionlimit(_RECURSION_LIMIT)

NETWORK = "eip155:84532"
"""Base Sepolia, the only network the stub facilitator supports."""
BASE_SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
"""The asset the SDK picks for a dollar price on Base Sepolia (its default asset table)."""
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
"""The seller's receiving address (the one in the x402 spec examples)."""
PRICE = "$0.001"
PRICE_ATOMIC = "1000"
"""`PRICE` in USDC atomic units (6 decimals)."""
FACILITATOR_SIGNER = "0x4444444444444444444444444444444444444444"
SUPPORTED_DOCUMENT: dict[str, Any] = {
    "kinds": [{"x402Version": 2, "scheme": "exact", "network": NETWORK}],
    "extensions": [],
    "signers": {"eip155:*": [FACILITATOR_SIGNER]},
}
"""What the stub facilitator answers to `GET /supported` (x402 v2 §7.3.1)."""
VERIFY_REFUSAL: dict[str, Any] = {
    "isValid": False,
    "invalidReason": "invalid_payload",
    "invalidMessage": "stub facilitator: every payment is refused",
}
SETTLE_REFUSAL: dict[str, Any] = {
    "success": False,
    "errorReason": "unexpected_settle_error",
    "errorMessage": "stub facilitator: every payment is refused",
    "transaction": "",
    "network": NETWORK,
}
START_TIMEOUT_S = 60.0
_POLL_S = 0.02
_MAX_BODY = 1024 * 1024


class _FacilitatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FacilitatorHandler)
        self.lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()

    def count(self, path: str) -> None:
        with self.lock:
            self.calls[path] += 1


class _FacilitatorHandler(BaseHTTPRequestHandler):
    server: _FacilitatorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output should not carry one line per request."""

    def _reply(self, status: int, document: object) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def do_GET(self) -> None:
        path = self._path()
        self.server.count(path)
        if path == "/supported":
            self._reply(200, SUPPORTED_DOCUMENT)
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        path = self._path()
        self.server.count(path)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(max(length, 0), _MAX_BODY))
        if path == "/verify":
            self._reply(200, VERIFY_REFUSAL)
        elif path == "/settle":
            self._reply(200, SETTLE_REFUSAL)
        else:
            self._reply(404, {"error": "not found"})


def _routes() -> dict[str, RouteConfig]:
    def option() -> PaymentOption:
        return PaymentOption(scheme="exact", pay_to=PAY_TO, price=PRICE, network=NETWORK)

    return {
        "GET /weather": RouteConfig(
            accepts=option(), description="Weather report", mime_type="application/json"
        ),
        "POST /report": RouteConfig(
            accepts=option(), description="Submit a report", mime_type="application/json"
        ),
    }


def build_app(facilitator_url: str) -> FastAPI:
    """Return the paid FastAPI app, its SDK already initialised against `facilitator_url`.

    Raises whatever the SDK raises when the facilitator is unreachable or does not support
    the routes' (scheme, network) (see workaround 2 in the module docstring).
    """
    facilitator = HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url, timeout=30.0))
    server = x402ResourceServer(facilitator)
    # x402 2.25.0 typing gaps: `ExactEvmScheme.__init__` is unannotated, and its
    # `payment_flows` dict does not match the `SchemeNetworkServer` protocol it implements.
    scheme = ExactEvmServerScheme()  # type: ignore[no-untyped-call]
    server.register(NETWORK, scheme)  # type: ignore[arg-type]
    routes = _routes()
    x402HTTPResourceServer(server, routes).initialize()

    app = FastAPI()
    app.middleware("http")(payment_middleware(routes, server, sync_facilitator_on_start=False))

    @app.get("/weather")
    async def weather() -> dict[str, Any]:
        return {"report": {"weather": "sunny", "temperature": 70}}

    @app.post("/report")
    async def report() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/free")
    async def free() -> dict[str, Any]:
        return {"ok": True}

    return app


def _wait(condition: Any, what: str, failure: list[BaseException]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        if failure:
            raise RuntimeError(f"{what} failed to start: {failure[0]!r}") from failure[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {START_TIMEOUT_S}s")
        time.sleep(_POLL_S)


class SdkSeller:
    """A running SDK seller and its stub facilitator; use as a context manager or call `stop()`."""

    def __init__(self) -> None:
        self._facilitator = _FacilitatorServer()
        host, port = self._facilitator.server_address[:2]
        self.facilitator_url = f"http://{host!s}:{port}"
        """Base URL of the stub facilitator, e.g. `http://127.0.0.1:41234` (no trailing /)."""
        self._facilitator_thread = threading.Thread(
            target=self._facilitator.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sdk-seller-facilitator",
            daemon=True,
        )
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        seller_port = 0
        try:
            self._facilitator_thread.start()
            self._socket.bind(("127.0.0.1", 0))
            seller_port = int(self._socket.getsockname()[1])
            config = uvicorn.Config(
                build_app(self.facilitator_url),
                host="127.0.0.1",
                port=seller_port,
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
            self._server = uvicorn.Server(config)
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._serve, args=(self._server, failure), name="sdk-seller", daemon=True
            )
            self._thread.start()
            server = self._server
            _wait(lambda: server.started, "the SDK seller", failure)
        except BaseException:
            self.stop()
            raise
        self.base_url = f"http://127.0.0.1:{seller_port}"
        """Base URL of the paid app, e.g. `http://127.0.0.1:41235` (no trailing /)."""

    def _serve(self, server: uvicorn.Server, failure: list[BaseException]) -> None:
        try:
            server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by _wait; a thread cannot raise to its starter
            failure.append(exc)

    @property
    def facilitator_calls(self) -> collections.Counter[str]:
        """Return a copy of the stub facilitator's request counts by path (missing paths: 0)."""
        with self._facilitator.lock:
            return collections.Counter(self._facilitator.calls)

    def stop(self) -> None:
        """Stop both servers and wait for their threads (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(START_TIMEOUT_S)
        self._socket.close()
        if self._facilitator_thread.is_alive():
            self._facilitator.shutdown()
            self._facilitator_thread.join(START_TIMEOUT_S)
        self._facilitator.server_close()

    def __enter__(self) -> SdkSeller:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sdk_seller() -> SdkSeller:
    """Start the stub facilitator, then the SDK seller; return once both accept connections.

    Raises RuntimeError when the seller does not start within `START_TIMEOUT_S` seconds.
    """
    return SdkSeller()
