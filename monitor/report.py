"""Render check results for people (rich tables, the validation report) and machines (JSON).

Shell module: presentation only; it computes nothing the core does not already provide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from monitor.config import ThresholdsConfig
from monitor.models import CheckResult, Finding, Outcome, Severity
from monitor.stats import EndpointFigures, EndpointState, OutcomeCounts, advance, figures_of
from monitor.urls import slug_for
from monitor.x402 import ALL_CODES

_STATUS_STYLE = {"healthy": "green", "degraded": "yellow", "down": "red", "unknown": "dim"}
_SEVERITY_TITLE = {
    Severity.ERROR: ("Errors", "red", "block payment"),
    Severity.WARNING: ("Warnings", "yellow", "payable, but fix them"),
    Severity.INFO: ("Notes", "cyan", "for information"),
}


def check_json(
    url: str, slug: str, result: CheckResult, figures: EndpointFigures
) -> dict[str, Any]:
    """Return the `monitor check --json` object of one endpoint's check and figures."""
    offer = result.challenge.headline_offer if result.challenge else None
    return {
        "url": url,
        "slug": slug,
        "method": result.method,
        "method_guessed": result.method_guessed,
        "checked_at": result.checked_at.isoformat(),
        "outcome": result.outcome.value,
        "status": figures.status.value,
        "http_status": result.http_status,
        "latency_ms": _rounded(result.latency_ms),
        "x402_version": result.x402_version,
        "payment_requirements_valid": result.payment_requirements_valid,
        "asset": result.asset_verdict.value,
        "facilitator": result.facilitator_verdict.value,
        "price": offer.price if offer else None,
        "network": (offer.caip2 or offer.network) if offer else None,
        "consecutive_failures": figures.consecutive_failures,
        "last_healthy": figures.last_healthy_at.isoformat() if figures.last_healthy_at else None,
        "uptime_30d": figures.uptime_30d,
        "reachability_30d": figures.reachability_30d,
        "p50_ms": _rounded(figures.p50_ms),
        "p95_ms": _rounded(figures.p95_ms),
        "score": figures.score,
        "error": result.error,
        "findings": [finding.as_dict() for finding in result.findings],
    }


def validation_json(url: str, result: CheckResult) -> dict[str, Any]:
    """Return the `monitor validate --json` object: check's keys for one lone check."""
    state, _ = advance(EndpointState(), result.outcome, result.checked_at, None, ThresholdsConfig())
    counts = OutcomeCounts(
        passes=int(result.outcome is Outcome.PASS),
        soft_fails=int(result.outcome is Outcome.SOFT_FAIL),
        hard_fails=int(result.outcome is Outcome.HARD_FAIL),
        inconclusive=int(result.outcome is Outcome.INCONCLUSIVE),
        first_check_at=result.checked_at,
    )
    figures = figures_of(state, counts, None, None, result.checked_at)
    return check_json(url, slug_for(url, result.method), result, figures)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _console(*, stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal:
        # Piped output: do not fold URLs at the 80 columns rich assumes without a terminal.
        console = Console(width=200, stderr=stderr)
    return console


def print_check_table(rows: Sequence[tuple[str, CheckResult, EndpointFigures]]) -> None:
    """Print one row per endpoint: endpoint, status, HTTP, latency, outcome, first finding."""
    table = Table(title=f"x402 monitor: {len(rows)} endpoints checked")
    for column in ("endpoint", "status", "HTTP", "latency", "outcome", "first finding"):
        table.add_column(column, overflow="fold")
    for url, result, figures in rows:
        status = figures.status.value
        first = next(iter(result.findings), None)
        table.add_row(
            f"{result.method} {url}",
            f"[{_STATUS_STYLE[status]}]{status}[/]",
            "-" if result.http_status is None else str(result.http_status),
            "-" if result.latency_ms is None else f"{result.latency_ms:.0f} ms",
            result.outcome.value,
            f"{first.severity}: {first.message}" if first else (result.error or ""),
        )
    _console().print(table)


def print_validation(url: str, result: CheckResult) -> None:
    """Print the seller-facing report: verdict first, then findings grouped by severity."""
    console = _console()
    challenge = result.challenge
    if challenge is not None and challenge.valid:
        verdict = "[bold green]VALID[/]: a standard x402 client can pay this endpoint"
    elif result.http_status is None:
        verdict = f"[bold red]NO ANSWER[/]: {result.error}"
    else:
        verdict = f"[bold red]NOT PAYABLE[/]: {result.error or 'no valid payment challenge'}"
    console.print(verdict, highlight=False)
    facts = Table.grid(padding=(0, 2))
    facts.add_row(
        "endpoint", f"{result.method} {url}" + (" (guessed)" if result.method_guessed else "")
    )
    if result.http_status is not None:
        latency = "" if result.latency_ms is None else f" in {result.latency_ms:.0f} ms"
        facts.add_row("answer", f"HTTP {result.http_status}{latency}, outcome {result.outcome}")
    if challenge is not None and challenge.version is not None:
        offers = len(challenge.offers)
        valid = sum(offer.valid for offer in challenge.offers)
        facts.add_row(
            "challenge",
            f"x402 v{challenge.version} from the {challenge.source}, "
            f"{valid} of {offers} offers valid",
        )
    offer = challenge.headline_offer if challenge else None
    if offer is not None:
        facts.add_row("price", f"{offer.price or offer.amount} on {offer.caip2 or offer.network}")
    facts.add_row("asset", result.asset_verdict.value)
    facts.add_row("facilitator", result.facilitator_verdict.value)
    console.print(facts, highlight=False)
    for severity, (title, colour, note) in _SEVERITY_TITLE.items():
        group = [finding for finding in result.findings if finding.severity is severity]
        if group:
            console.print(f"\n[bold {colour}]{title} ({len(group)})[/] — {note}", highlight=False)
            for finding in group:
                _print_finding(console, finding)


def _print_finding(console: Console, finding: Finding) -> None:
    rule = ALL_CODES.get(finding.code)
    console.print(f"  [bold]{finding.code}[/]  {finding.path}", highlight=False, markup=True)
    console.print(f"    {finding.message}", highlight=False, markup=False)
    if rule is not None and rule.fix not in finding.message:
        console.print(f"    fix: {rule.fix}", highlight=False, markup=False)
