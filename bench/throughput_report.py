"""The probe benchmark's figures: rows as they are measured, ratios, plain and Markdown tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.models import CheckResult, Outcome, ProbeFacts
from monitor.store import StoredEndpoint


@dataclass(frozen=True)
class Row:
    """One line of the final table."""

    what: str
    endpoints: int
    concurrency: int
    client: str
    rate: float | None
    note: str = ""
    workload: str = "loopback"
    """`loopback`: 8 addresses, keep-alive; `https`: a TLS fleet, a new connection per probe."""


@dataclass
class Report:
    """Every figure, printed as it is measured and again at the end."""

    rows: list[Row] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        rate = "-" if row.rate is None else f"{row.rate:,.0f}/s"
        print(
            f"  {row.workload:<8} {row.what:<12} {row.endpoints:>7,} endpoints  "
            f"c={row.concurrency:<4} {row.client:<22} {rate:>9}  {row.note}",
            flush=True,
        )

    def line(self, text: str) -> None:
        self.lines.append(text)
        print(f"  {text}", flush=True)


def outcome_note(checks: Sequence[tuple[StoredEndpoint, CheckResult]], total: int) -> str:
    """Return '' when every check passed, else the outcome counts (a broken run shows)."""
    outcomes = Counter(result.outcome for _, result in checks)
    if outcomes[Outcome.PASS] == total:
        return ""
    return "NOT ALL PASS: " + ", ".join(f"{n} {o}" for o, n in outcomes.items())


def facts_note(facts: Sequence[ProbeFacts]) -> str:
    """Return '' when every probe got a 402, else what came back instead."""
    bad = Counter(str(f.error or f.http_status) for f in facts if f.http_status != 402)
    return "" if not bad else "NOT ALL 402: " + ", ".join(f"{n} {k}" for k, n in bad.items())


def ratios(report: Report) -> list[str]:
    """Return monitor pipeline and service rates over blackbox's on the same workload."""
    texts = []
    for row in report.rows:
        if not row.what.startswith(("pipeline", "service", "probe only")) or row.rate is None:
            continue
        blackbox = next(
            (
                other
                for other in report.rows
                if other.what == "blackbox"
                and (other.endpoints, other.concurrency, other.workload)
                == (row.endpoints, row.concurrency, row.workload)
            ),
            None,
        )
        if blackbox is not None and blackbox.rate:
            texts.append(
                f"{row.workload}: {row.what} / blackbox at {row.endpoints:,} endpoints, "
                f"c={row.concurrency}, {row.client}: {row.rate / blackbox.rate:.2f}"
            )
    return texts


def print_tables(report: Report) -> None:
    """Print the figures as a plain table, the ratios and notes, then the same as Markdown."""
    print("\n== Summary ==\n")
    header = ("workload", "what", "endpoints", "concurrency", "client", "probes/s", "note")
    cells = [
        (
            row.workload,
            row.what,
            f"{row.endpoints:,}",
            str(row.concurrency),
            row.client,
            "-" if row.rate is None else f"{row.rate:,.0f}",
            row.note,
        )
        for row in report.rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    right = {2, 3, 5}
    for cols in (header, *cells):
        print(
            "  ".join(
                text.rjust(width) if i in right else text.ljust(width)
                for i, (text, width) in enumerate(zip(cols, widths, strict=True))
            ).rstrip()
        )
    print()
    for text in [*ratios(report), *report.lines]:
        print(text)
    print("\nMarkdown:\n")
    print("| workload | what | endpoints | concurrency | client | probes/s |")
    print("| --- | --- | ---: | ---: | --- | ---: |")
    for c in cells:
        print(f"| {c[0]} | {c[1]} | {c[2]} | {c[3]} | {c[4]} | {c[5]} |")
    print()
    for text in [*ratios(report), *report.lines]:
        print(f"- {text}")
