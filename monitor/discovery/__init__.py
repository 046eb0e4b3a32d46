"""Facilitator HTTP calls (edge: httpx): `GET /supported` and the Bazaar catalogue crawler.

`supported` fetches and caches facilitators' /supported for the facilitator check; `crawl`
pages through `GET /discovery/resources`. Both hold one shared `httpx.AsyncClient`. Everything
`monitor.discovery` exported before it became a package is re-exported here unchanged.
"""

from __future__ import annotations

from monitor.discovery.crawl import CatalogueCrawler, CataloguePage, CrawlError, resources_url
from monitor.discovery.supported import (
    MAX_SUPPORTED_BYTES,
    FacilitatorClient,
    SupportedResult,
    supported_url,
)

__all__ = [
    "MAX_SUPPORTED_BYTES",
    "CatalogueCrawler",
    "CataloguePage",
    "CrawlError",
    "FacilitatorClient",
    "SupportedResult",
    "resources_url",
    "supported_url",
]
