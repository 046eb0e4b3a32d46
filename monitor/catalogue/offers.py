"""Validate a catalogue item's offers with the x402 core (a catalogue is not a 402 body).

Helper of `monitor.catalogue`. Pure: the monitor core only.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.models import Challenge, JsonValue
from monitor.x402.bazaar import ApiDescription, describe
from monitor.x402.codes import CODES
from monitor.x402.context import MAX_OFFERS
from monitor.x402.decode import _validate


def _vocabulary(declared: int, accepts: list[JsonValue]) -> int:
    """Return the field-name vocabulary of the offers: the first amount field decides.

    Catalogues carry v2 items written with v1 names (`maxAmountRequired`, example 05); judging
    those by their declared version would call every offer invalid.
    """
    for entry in accepts[:MAX_OFFERS]:
        if isinstance(entry, Mapping) and "amount" in entry:
            return 2
        if isinstance(entry, Mapping) and "maxAmountRequired" in entry:
            return 1
    return declared


def catalogue_challenge(item: Mapping[str, JsonValue]) -> Challenge:
    """Return the item's offers validated by the x402 core, as a Challenge (see below)."""
    return challenge_and_description(item)[0]


def challenge_and_description(
    item: Mapping[str, JsonValue],
) -> tuple[Challenge, ApiDescription | None]:
    """Validate a catalogue item's offers; return them as a Challenge, with `describe(item)`.

    A catalogue item is not a 402 body: its envelope (string `resource`, `type`,
    `lastUpdated`, `metadata`) is not judged, and there is no `v2-in-body` rule. The offers
    are checked as `{x402Version: <vocabulary>, accepts}` where the vocabulary follows the
    amount field names; a v1-vocabulary entry without its own `resource` borrows the item's.
    Findings are the offer findings plus the item's discovery-metadata findings (`describe`).
    `version` is the item's declared x402Version, `source` is "catalogue". The caller has
    checked that `accepts` is a list and x402Version is 1 or 2.
    """
    declared = item.get("x402Version")
    accepts = item.get("accepts")
    entries: list[JsonValue] = accepts if isinstance(accepts, list) else []
    version = declared if isinstance(declared, int) and declared in (1, 2) else 2
    vocabulary = _vocabulary(version, entries)
    resource = item.get("resource")
    url = resource.get("url") if isinstance(resource, Mapping) else resource
    if vocabulary == 1:
        entries = [
            {**entry, "resource": url}
            if isinstance(entry, Mapping) and "resource" not in entry
            else entry
            for entry in entries
        ]
    checked = _validate({"x402Version": vocabulary, "accepts": entries}, "catalogue", [])
    offer_findings = tuple(
        f
        for f in checked.findings
        if f.code in CODES and (f.path == "accepts" or f.path.startswith("accepts["))
    )
    description, bazaar_findings = describe(item)
    input_schema, output_schema = _schemas(item, description)
    challenge = Challenge(
        version=version,
        source="catalogue",
        document=item,
        offers=checked.offers,
        findings=offer_findings + tuple(bazaar_findings),
        valid=any(offer.valid for offer in checked.offers),
        input_schema=input_schema,
        output_schema=output_schema,
    )
    return challenge, description


def _schemas(
    item: Mapping[str, JsonValue], description: ApiDescription | None
) -> tuple[Mapping[str, JsonValue] | None, Mapping[str, JsonValue] | None]:
    """Return the raw published (input, output) objects from where `describe` read them."""
    if description is None:
        return None, None
    if description.source == "v2-bazaar":
        extensions = item.get("extensions")
        bazaar = extensions.get("bazaar") if isinstance(extensions, Mapping) else None
        holder = bazaar.get("info") if isinstance(bazaar, Mapping) else None
    else:
        accepts = item.get("accepts")
        holder = next(
            (
                entry.get("outputSchema", entry.get("output_schema"))
                for entry in (accepts[:MAX_OFFERS] if isinstance(accepts, list) else [])
                if isinstance(entry, Mapping)
                and isinstance(entry.get("outputSchema", entry.get("output_schema")), Mapping)
            ),
            None,
        )
    if not isinstance(holder, Mapping):
        return None, None
    found_input, found_output = holder.get("input"), holder.get("output")
    return (
        found_input if isinstance(found_input, Mapping) else None,
        found_output if isinstance(found_output, Mapping) else None,
    )
