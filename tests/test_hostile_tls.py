"""Hostile TLS servers cost one check each, never a round (issue 11, "Tests that must exist").

Certificates come from a test authority (trustme) that only the probe's client context trusts;
host names under `seller.test` resolve to loopback through the test resolver, so SNI and the
host name check see real names. Each case runs one real round beside a healthy seller over
plain HTTP and one over TLS, with the assertions of tests/test_hostile_http.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_round import Case, assert_costs_one_check
from hostile_servers import (
    V1_CHALLENGE,
    Pki,
    challenge_answer,
    every_request,
    hang_up_after_hello,
    healthy,
    pki,
    plain_http,
    server_hello_then_garbage,
    silent,
    trickling,
)
from scripted_server import Handler, answer

HARD = "hard_fail"
HEAD_402 = b"HTTP/1.1 402 Payment Required\r\nContent-Type: application/json\r\n"
TLS_ERROR = "TLS error: "


def garbage_after_hello() -> Handler:
    return server_hello_then_garbage(Pki.server_context(pki().good), b"this is not TLS\r\n\r\n")


CASES = [
    # The certificate checks.
    Case(
        "expired",
        healthy,
        HARD,
        (TLS_ERROR, "certificate has expired"),
        scheme="https",
        certificate="expired",
    ),
    Case(
        "wrong-name",
        healthy,
        HARD,
        (TLS_ERROR, "Hostname mismatch", "wrong-name.seller.test"),
        scheme="https",
        certificate="wrong_name",
    ),
    Case(
        "unknown-ca",
        healthy,
        HARD,
        (TLS_ERROR, "unable to get local issuer certificate"),
        scheme="https",
        certificate="unknown_ca",
    ),
    # Servers that break the handshake itself.
    Case("plain-http", plain_http, HARD, (TLS_ERROR,), scheme="https"),
    Case("silent-hello", silent, HARD, ("TLS handshake timeout after 1s",), scheme="https"),
    Case(
        "closes-mid-handshake",
        hang_up_after_hello,
        HARD,
        ("closed the connection during the TLS handshake",),
        scheme="https",
    ),
    Case(
        "garbage-after-server-hello",
        garbage_after_hello,
        HARD,
        (TLS_ERROR,),
        scheme="https",
    ),
    # HTTP abuse inside a good TLS session.
    Case(
        "tls-slowloris-head",
        lambda: trickling(b"HTTP/1.1 402 Payment Required\r\nX-Slow: "),
        HARD,
        ("timeout after 2s",),
        scheme="https",
        certificate="good",
    ),
    Case(
        "tls-truncated-body",
        lambda: every_request([HEAD_402 + b"Content-Length: 900\r\n\r\n{", "close"]),
        HARD,
        ("before the end of the body",),
        scheme="https",
        certificate="good",
    ),
    Case(
        "tls-body-until-close",
        lambda: every_request([HEAD_402 + b"Connection: close\r\n\r\n" + V1_CHALLENGE, "close"]),
        "pass",
        scheme="https",
        certificate="good",
    ),
    Case(
        "tls-second-answer-behind",
        lambda: every_request([challenge_answer() + answer(b"free", status="200 OK")]),
        "pass",
        targets=("/a", "/b"),
        scheme="https",
        certificate="good",
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_a_hostile_tls_server_costs_one_check(
    case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert_costs_one_check(case, tmp_path / "monitor.db", caplog, ("http", "https"))
