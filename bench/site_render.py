"""Benchmark: render the static site for 1,000 and 20,000 synthetic endpoints.

For each size: a full render into an empty directory, then an incremental one with 1% of the
endpoints changed (same snapshot time, so every other file keeps its bytes), then the size of
the site on disk. Figures are printed, never asserted.

    .venv/bin/python bench/site_render.py [--sizes 1000 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.models import AssetVerdict, FacilitatorVerdict, Finding, Outcome, Severity, Status
from monitor.site import RenderReport, render_site
from monitor.snapshot import (
    CheckLine,
    DayFigures,
    EndpointDetail,
    EndpointSnapshot,
    FlipLine,
    LatencyPoint,
    MonitorSnapshot,
)

NOW = datetime(2026, 3, 20, 19, 0, tzinfo=UTC)
STATUSES = (Status.HEALTHY,) * 7 + (Status.DEGRADED, Status.DOWN, Status.UNKNOWN)
CATEGORIES = ("data", "media/images", "search", "ai/llm", "finance", "weather", "maps")
SCHEMA = {
    "bodyFields": {
        f"field_{i}": {"type": "string", "description": f"Field number {i}.", "required": i < 2}
        for i in range(12)
    },
    "bodyType": "json",
    "method": "POST",
}


def endpoint(index: int, variant: int = 0) -> EndpointDetail:
    """Return one synthetic endpoint with a realistic amount of history."""
    status = STATUSES[(index + variant) % len(STATUSES)]
    slug = f"api-{index % 97}-example-com-v1-resource-{index:06d}"
    summary = EndpointSnapshot(
        slug=slug,
        url=f"https://api-{index % 97}.example.com/v1/resource/{index}",
        method="POST" if index % 2 else "GET",
        title=f"Synthetic endpoint {index} doing something useful",
        category=CATEGORIES[index % len(CATEGORIES)],
        network="eip155:8453",
        source="bazaar",
        status=status,
        up=status is Status.HEALTHY,
        consecutive_failures=0 if status is Status.HEALTHY else 3 + variant,
        uptime_30d=0.99 - (index % 10) / 100,
        score=80 - index % 30,
        payment_requirements_valid=True,
        asset_verified=True,
        facilitator_supported=True,
        last_check_at=NOW - timedelta(seconds=index % 300),
        p50_ms=100.0 + index % 900,
        p95_ms=300.0 + index % 2000,
    )
    checks = tuple(
        CheckLine(
            NOW - timedelta(minutes=5 * i),
            Outcome.PASS,
            status,
            402,
            120.0 + (i * 7) % 80,
            None,
        )
        for i in range(20)
    )
    return EndpointDetail(
        summary=summary,
        description="A synthetic endpoint for the render benchmark. " * 3,
        x402_version=2,
        price=f"${(index % 100) / 100:.2f}",
        asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        asset_name="USD Coin",
        network_name="Base",
        provider=f"api-{index % 97}.example.com",
        indexed_at=datetime(2026, 2, 1, tzinfo=UTC),
        last_healthy_at=NOW - timedelta(minutes=5),
        reachability_30d=1.0,
        coverage_days=30.0,
        payment_requirements_valid=True,
        asset_verdict=AssetVerdict.VERIFIED,
        facilitator_verdict=FacilitatorVerdict.SUPPORTED,
        facilitator="https://facilitator.example/",
        findings=((Finding("offer.note", Severity.INFO, "a note", "accepts[0]"), "Nothing."),),
        input_schema=SCHEMA,
        output_schema={"type": "object", "properties": {"id": {"type": "string"}}},
        recent_checks=checks,
        latency_24h=tuple(
            LatencyPoint(NOW - timedelta(minutes=5 * i), 120.0 + (i * 13 + variant) % 90)
            for i in range(287, -1, -1)
        ),
        latency_7d=tuple(
            LatencyPoint(NOW - timedelta(hours=i), 130.0 + (i * 7) % 50) for i in range(167, -1, -1)
        ),
        days=tuple(
            DayFigures(NOW.date() - timedelta(days=29 - d), 280, 8, 0, 0, 140.0) for d in range(30)
        ),
        flips=(FlipLine(NOW - timedelta(days=3, minutes=index), Status.UNKNOWN, status, "first"),),
        catalogue_item={"resource": summary.url, "accepts": [{"network": "base"}]},
    )


def size_of(root: Path) -> tuple[int, int]:
    """Return (files, bytes) of a directory tree."""
    files = total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            total += os.path.getsize(os.path.join(folder, name))
    return files, total


def line(label: str, report: RenderReport) -> str:
    return (
        f"  {label:<24} {report.seconds:8.2f} s   written {report.written:>7}   "
        f"unchanged {report.unchanged:>7}   removed {report.removed:>5}"
    )


def run(count: int, workdir: Path) -> None:
    details = [endpoint(i) for i in range(count)]
    snapshot = MonitorSnapshot(taken_at=NOW, endpoints=tuple(d.summary for d in details))
    output = workdir / f"site-{count}"
    print(f"{count:,} endpoints")
    full = render_site(snapshot, details, output, base_url="https://directory.example/")
    print(line("full render", full))
    step = 100  # 1% changed: a new status and new latencies
    for index in range(0, count, step):
        details[index] = endpoint(index, variant=7)
    snapshot = replace(snapshot, endpoints=tuple(d.summary for d in details))
    incremental = render_site(snapshot, details, output, base_url="https://directory.example/")
    print(line("incremental (1% changed)", incremental))
    files, total = size_of(output)
    print(f"  site size                {total / 1e6:8.1f} MB   {files:,} files")
    print(f"  per endpoint (full)      {full.seconds / count * 1000:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--keep", type=Path, help="render here and keep the sites")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="site-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for count in args.sizes:
            run(count, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
