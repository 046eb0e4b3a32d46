"""Decide which IP addresses a probe may connect to (DESIGN.md, "Safety").

Core module: pure, stdlib `ipaddress` only. Endpoints come from public catalogues, so a URL
may point (directly, through DNS or after a redirect) at the monitor's own machine or network;
`refusal_reason` is the single rule every TCP connection of a probe is checked against.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Carrier-grade NAT space (RFC 6598): neither private nor global to `ipaddress`, but it is
# the provider's internal network and must not be reachable through the monitor.
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")

# Checked in order; the first matching category names the refusal. Loopback and link-local
# come before "reserved"/"private" because Python also flags those (e.g. ::1 is reserved),
# and the specific word is the more useful one in an error message.
_CATEGORIES: tuple[tuple[str, Callable[[_IPAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("shared", lambda ip: isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
    ("reserved", lambda ip: ip.is_reserved),
    ("private", lambda ip: ip.is_private),
    # Anything else IANA does not call globally routable (documentation, benchmarking, ...).
    ("non-global", lambda ip: not ip.is_global),
)


def refusal_reason(ip: str) -> str | None:
    """Return why a probe must not connect to `ip`, or None when it may.

    The reason is short and names the category and address, e.g. "loopback address 127.0.0.1".
    IPv6 addresses that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`)
    are judged as that IPv4 address, because that is where the packets end up. A string that
    is not an IP address is refused too (fail closed).
    """
    try:
        address: _IPAddress = ipaddress.ip_address(ip)
    except ValueError:
        return f"not an IP address: {ip!r}"
    shown = str(address)
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            if address.ipv4_mapped is not None:
                # Dotted form regardless of Python version (3.11 prints ::ffff:7f00:1).
                shown = f"::ffff:{embedded}"
            reason = refusal_reason(str(embedded))
            return None if reason is None else f"{reason} (embedded in {shown})"
    for category, matches in _CATEGORIES:
        if matches(address):
            return f"{category} address {shown}"
    return None
