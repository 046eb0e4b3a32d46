"""Probe endpoints without paying: the Prober and its guarded HTTP/1.1 transport.

Edge package: owns httpx and the sockets. `prober` sends one unpaid request per check and
turns every answer or failure into `ProbeFacts`; `http1` is the transport under it.
"""

from monitor.probe.http1 import AddressRefusedError, Http1Transport, Resolver, resolve
from monitor.probe.prober import Prober, build_transport, host_of, monitor_failure

__all__ = [
    "AddressRefusedError",
    "Http1Transport",
    "Prober",
    "Resolver",
    "build_transport",
    "host_of",
    "monitor_failure",
    "resolve",
]
