"""Tests of the probe address policy (monitor.addresses.refusal_reason)."""

from __future__ import annotations

import pytest

from monitor.addresses import refusal_reason


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("127.0.0.1", "loopback address 127.0.0.1"),
        ("127.8.9.10", "loopback address 127.8.9.10"),
        ("::1", "loopback address ::1"),
        ("10.0.0.1", "private address 10.0.0.1"),
        ("172.16.5.4", "private address 172.16.5.4"),
        ("192.168.1.1", "private address 192.168.1.1"),
        ("fc00::1", "private address fc00::1"),
        ("fd12:3456::1", "private address fd12:3456::1"),
        ("169.254.169.254", "link-local address 169.254.169.254"),
        ("fe80::1", "link-local address fe80::1"),
        ("224.0.0.1", "multicast address 224.0.0.1"),
        ("239.255.255.250", "multicast address 239.255.255.250"),
        ("ff02::1", "multicast address ff02::1"),
        ("0.0.0.0", "unspecified address 0.0.0.0"),
        ("::", "unspecified address ::"),
        ("100.64.0.1", "shared address 100.64.0.1"),
        ("100.127.255.254", "shared address 100.127.255.254"),
        ("240.0.0.1", "reserved address 240.0.0.1"),
        ("255.255.255.255", "reserved address 255.255.255.255"),
        ("64:ff9b::a00:1", "reserved address 64:ff9b::a00:1"),
        ("0.1.2.3", "private address 0.1.2.3"),
        ("192.0.2.1", "private address 192.0.2.1"),
        ("2001:db8::1", "private address 2001:db8::1"),
        (
            "::ffff:127.0.0.1",
            "loopback address 127.0.0.1 (embedded in ::ffff:127.0.0.1)",
        ),
        ("::ffff:10.1.2.3", "private address 10.1.2.3 (embedded in ::ffff:10.1.2.3)"),
        ("::ffff:169.254.1.1", "link-local address 169.254.1.1 (embedded in ::ffff:169.254.1.1)"),
        ("2002:7f00:1::", "loopback address 127.0.0.1 (embedded in 2002:7f00:1::)"),
        ("not-an-ip", "not an IP address: 'not-an-ip'"),
        ("", "not an IP address: ''"),
    ],
)
def test_refused_addresses_name_category_and_address(ip: str, reason: str) -> None:
    assert refusal_reason(ip) == reason


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.63.255.255",  # just below 100.64/10
        "100.128.0.0",  # just above 100.64/10
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert refusal_reason(ip) is None


def test_mapped_addresses_are_judged_as_their_ipv4() -> None:
    for ip in ("127.0.0.1", "10.0.0.1", "169.254.0.1", "100.64.0.1", "0.0.0.0", "8.8.8.8"):
        direct = refusal_reason(ip)
        mapped = refusal_reason(f"::ffff:{ip}")
        assert (direct is None) == (mapped is None), ip
        if direct is not None:
            assert mapped is not None
            assert mapped.startswith(direct)
