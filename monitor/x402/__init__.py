"""Parse and validate x402 payment challenges; know networks; sample requests. Pure core.

The public surface: `parse_challenge` (402 headers + body → `Challenge` with findings),
`ChallengeMemo` (the same, remembering each endpoint's last answer), `first_error`, the
finding-code registry `CODES`, the network and asset tables (`V1_NETWORKS`, `ASSETS`,
`lookup_asset`, `asset_verdict`), `format_price`, and `sample_request`.
"""

from __future__ import annotations

from monitor.x402.assets import ASSETS, AssetRow, asset_verdict
from monitor.x402.assets import lookup as lookup_asset
from monitor.x402.bazaar_codes import BAZAAR_CODES
from monitor.x402.codes import CODES, Rule, registry_markdown
from monitor.x402.decode import first_error, parse_challenge
from monitor.x402.facilitator_codes import FACILITATOR_CODES
from monitor.x402.memo import ChallengeMemo
from monitor.x402.networks import V1_NETWORKS, is_known_network, to_caip2
from monitor.x402.price import format_price
from monitor.x402.sampling import SampleRequest, sample_request

ALL_CODES: dict[str, Rule] = {**CODES, **BAZAAR_CODES, **FACILITATOR_CODES}
"""Every finding code the monitor can report: challenge, discovery metadata, facilitator."""
assert len(ALL_CODES) == len(CODES) + len(BAZAAR_CODES) + len(FACILITATOR_CODES)

__all__ = [
    "ALL_CODES",
    "ASSETS",
    "BAZAAR_CODES",
    "CODES",
    "FACILITATOR_CODES",
    "V1_NETWORKS",
    "AssetRow",
    "ChallengeMemo",
    "Rule",
    "SampleRequest",
    "asset_verdict",
    "first_error",
    "format_price",
    "is_known_network",
    "lookup_asset",
    "parse_challenge",
    "registry_markdown",
    "sample_request",
    "to_caip2",
]
