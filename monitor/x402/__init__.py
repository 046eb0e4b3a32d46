"""Parse and validate x402 payment challenges; know networks; sample requests. Pure core.

The public surface: `parse_challenge` (402 headers + body → `Challenge` with findings),
`first_error`, the finding-code registry `CODES`, the network table, and `sample_request`.
"""

from __future__ import annotations

from monitor.x402.codes import CODES, Rule, registry_markdown
from monitor.x402.decode import first_error, parse_challenge
from monitor.x402.networks import V1_NETWORKS, is_known_network, to_caip2
from monitor.x402.sampling import SampleRequest, sample_request

__all__ = [
    "CODES",
    "V1_NETWORKS",
    "Rule",
    "SampleRequest",
    "first_error",
    "is_known_network",
    "parse_challenge",
    "registry_markdown",
    "sample_request",
    "to_caip2",
]
