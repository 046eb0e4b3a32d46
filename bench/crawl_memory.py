"""Print the speed and peak memory of crawling a 15,000-item catalogue (not a test; never asserts).

Usage: `.venv/bin/python bench/crawl_memory.py [--items 15000] [--page-limit 100]`.

A loopback facilitator in a child process (so its memory is not counted) serves
`/discovery/resources` with `--items` synthetic items built on the fly from
tests/fixtures/x402/05 (distinct URLs, descriptions, a v2 `extensions.bazaar` on every third
item, one hostile item in fifty). This process crawls it with `CatalogueCrawler.pages` and runs
`normalise_item` on every item, keeping only counters and the set of endpoint keys (what an
indexer must remember anyway) — as the store will, one page at a time.

Prints items/s (a first crawl), pages, results by reason, the tracemalloc peak of a second
crawl (Python allocations) and ru_maxrss (the whole process, interpreter and imports included).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import multiprocessing
import resource
import sys
import time
import tracemalloc
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.catalogue import CatalogueEntry, normalise_item
from monitor.discovery import CatalogueCrawler

TEMPLATE: dict[str, Any] = json.loads(
    (
        Path(__file__).resolve().parent.parent
        / "tests/fixtures/x402/05-discovery-item-cdp-docs-mixed-v1-v2.json"
    ).read_text()
)
BAZAAR = {
    "info": {
        "input": {"type": "http", "method": "POST", "bodyType": "json", "body": {"q": "x"}},
        "output": {"type": "json", "example": {"answer": 42}},
    },
    "schema": {"type": "object", "properties": {"input": {}}, "required": ["input"]},
}


def synthetic_item(index: int) -> dict[str, Any]:
    """Return item `index` of the synthetic catalogue (deterministic)."""
    item = copy.deepcopy(TEMPLATE)
    url = f"https://api{index % 500}.seller{index % 97}.example.com/x402/tool/{index}"
    if index % 50 == 49:
        url = f"http://10.0.{index % 256}.1/x"  # hostile: private target
    item["resource"] = url
    item["accepts"][0]["resource"] = url
    item["description"] = f"Synthetic paid tool {index}: weather, prices and search " * 3
    if index % 3 == 0:
        item["extensions"] = {"bazaar": BAZAAR}
        item["accepts"][0]["amount"] = item["accepts"][0].pop("maxAmountRequired")
    return item


def serve(total: int, conn: Connection) -> None:
    """Serve the synthetic catalogue on 127.0.0.1 until killed; send the port through `conn`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            offset, limit = int(query["offset"][0]), int(query["limit"][0])
            items = [synthetic_item(i) for i in range(offset, min(offset + limit, total))]
            page = {"x402Version": 2, "items": items, "pagination": {"total": total}}
            body = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    conn.send(server.server_address[1])
    server.serve_forever()


async def crawl(base_url: str, page_limit: int) -> tuple[Counter[str], int, int]:
    """Crawl and normalise everything; return (results by reason, pages, distinct keys)."""
    results: Counter[str] = Counter()
    keys: set[tuple[str, str | None]] = set()
    pages = 0
    async with CatalogueCrawler(
        user_agent="x402-monitor-bench/1", page_limit=page_limit, max_items=1_000_000
    ) as crawler:
        async for page in crawler.pages(base_url):
            pages += 1
            for item in page.items:
                result = normalise_item(item, allow_private=False)
                if isinstance(result, CatalogueEntry):
                    results["indexed"] += 1
                    keys.add(result.key)
                else:
                    results[result.reason] += 1
    return results, pages, len(keys)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=15_000)
    parser.add_argument("--page-limit", type=int, default=100)
    args = parser.parse_args(argv)

    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(args.items, send), daemon=True)
    server.start()
    try:
        port = receive.recv()
        base_url = f"http://127.0.0.1:{port}"
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        results, pages, keys = asyncio.run(crawl(base_url, args.page_limit))
        elapsed = time.perf_counter() - started
        # Again under tracemalloc, which slows Python down several times: memory only.
        tracemalloc.start()
        asyncio.run(crawl(base_url, args.page_limit))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        server.kill()  # the child started above, by its own handle
        server.join()
    seen = sum(results.values())
    print(f"items crawled      {seen:,} in {pages} pages of {args.page_limit}")
    print(f"results            {dict(results)}; distinct endpoint keys {keys:,}")
    rate = seen / elapsed
    print(f"time               {elapsed:.2f} s ({rate:,.0f} items/s, loopback server included)")
    print(f"tracemalloc peak   {peak / 2**20:.1f} MiB (Python allocations during the crawl)")
    print(
        f"ru_maxrss          {rss_after / 1024:.1f} MiB (before the crawl {rss_before / 1024:.1f})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
