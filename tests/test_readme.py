"""The README keeps its promises: set-up commands, and every finding code documented."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from monitor.x402 import BAZAAR_CODES, CODES, FACILITATOR_CODES, Rule, registry_markdown

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_set_up_commands_are_documented() -> None:
    assert "make run" in README
    assert "make test" in README


@pytest.mark.parametrize(
    ("marker", "registry"),
    [("challenge", CODES), ("bazaar", BAZAAR_CODES), ("facilitator", FACILITATOR_CODES)],
)
def test_finding_code_tables_match_the_registries(
    marker: str, registry: Mapping[str, Rule]
) -> None:
    match = re.search(f"<!-- codes:{marker} -->\n(.*?)<!-- /codes:{marker} -->", README, re.S)
    assert match, f"README lacks the <!-- codes:{marker} --> block"
    assert match.group(1) == registry_markdown(registry), (
        "regenerate the table: python -c 'from monitor.x402 import *; "
        f"print(registry_markdown(...))' (registry of {marker})"
    )


def test_category_rules_table_matches_the_code() -> None:
    from monitor.catalogue import category_rules_markdown

    assert category_rules_markdown() in README
