"""All hostile endpoints in one round: every endpoint gets a check, memory stays bounded.

Issue 11, "Tests that must exist": the round with every case of tests/test_hostile_http.py,
test_hostile_tls.py and test_hostile_payloads.py together (plus healthy sellers) may use at
most 100 MB more memory than a healthy round of the same size, with the 1 MiB body cap. Each
round runs in a fresh process (tests/hostile_round.py) that imports the same modules, so the
peak RSS of the two processes differs only by what the round itself held; the servers run
here, in the test's process, and do not count.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hostile_round import OVERRIDES, Case, Lab, stored_checks, unclean_text
from hostile_servers import pki
from test_hostile_http import CASES as HTTP_CASES
from test_hostile_payloads import CASES as PAYLOAD_CASES
from test_hostile_tls import CASES as TLS_CASES

ALL_CASES: list[Case] = [*HTTP_CASES, *TLS_CASES, *PAYLOAD_CASES]
HEALTHY_SCHEMES = ("http", "https") * 3
MAX_EXTRA_BYTES = 100_000_000
"""The hostile round may hold at most 100 MB more than the healthy one."""
SCRIPT = Path(__file__).resolve().parent / "hostile_round.py"
PROBE = {"timeout": "10s", "connect_timeout": "10s"}
"""Generous: the test process serves ~60 endpoints (30 TLS handshakes at once) from one event
loop, which a busy machine slows down; a healthy answer must not turn into a timeout."""
ROUND_BOUND_S = 10 * 10.0
"""A round ends within 10x PROBE's timeout."""
PROCESS_BOUND_S = 300.0
"""Start-up (imports) and one round, on a busy machine."""


async def run_in_process(spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run the round `spec` describes in a fresh Python; return what it printed (JSON)."""
    path = folder / f"{Path(spec['database']).stem}.json"
    path.write_text(json.dumps(spec))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), PROCESS_BOUND_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")
    assert err.decode(errors="replace") == ""  # no warning, error or traceback was logged
    result: dict[str, Any] = json.loads(out)
    return result


def as_healthy(urls: list[str], healthy_urls: list[str]) -> list[str]:
    """Return as many healthy endpoint URLs as `urls` has, scheme for scheme."""
    by_scheme = {url.split(":", 1)[0]: url for url in healthy_urls}
    return [
        by_scheme[url.split(":", 1)[0]].replace("://good-", f"://fine-{index}-")
        for index, url in enumerate(urls)
    ]


@pytest.mark.integration
def test_every_hostile_endpoint_in_one_round_gets_a_check_within_bounded_memory(
    tmp_path: Path,
) -> None:
    async def go() -> tuple[Lab, dict[str, Any], dict[str, Any]]:
        async with Lab(ALL_CASES, healthy_schemes=HEALTHY_SCHEMES) as lab:
            common = {
                "ca_pem": pki().authority.cert_pem.bytes().decode(),
                "overrides": OVERRIDES,
                "probe": PROBE,
            }
            healthy_urls = as_healthy(lab.all_urls, lab.healthy_urls)
            healthy = await run_in_process(
                {**common, "database": str(tmp_path / "healthy.db"), "urls": healthy_urls},
                tmp_path,
            )
            hostile = await run_in_process(
                {**common, "database": str(tmp_path / "hostile.db"), "urls": lab.all_urls},
                tmp_path,
            )
            healthy["urls"] = healthy_urls
        return lab, healthy, hostile

    lab, healthy, hostile = asyncio.run(go())

    checks = stored_checks(tmp_path / "hostile.db")
    assert sorted(checks) == sorted(lab.all_urls)
    assert all(len(found) == 1 for found in checks.values())
    for case in ALL_CASES:
        if case.known_bug is None:
            for url in lab.urls[case.name]:
                assert checks[url][0].outcome == case.outcome, checks[url]
    assert [checks[url][0] for url in lab.healthy_urls if checks[url][0].outcome != "pass"] == []
    assert unclean_text(tmp_path / "hostile.db") == []
    assert hostile["elapsed_s"] <= ROUND_BOUND_S

    baseline = stored_checks(tmp_path / "healthy.db")
    assert sorted(baseline) == sorted(healthy["urls"])
    assert [found[0] for found in baseline.values() if found[0].outcome != "pass"] == []
    extra = (hostile["max_rss_kib"] - healthy["max_rss_kib"]) * 1024
    assert extra <= MAX_EXTRA_BYTES, f"the hostile round held {extra / 1e6:.0f} MB more"
