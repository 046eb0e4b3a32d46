"""Normalise an endpoint's discovery metadata (v1 outputSchema, v2 bazaar) into one description.

`describe` reads a decoded 402 challenge — v1 with `accepts[].outputSchema`, v2 with
`extensions.bazaar` — or a Bazaar catalogue item, and returns one `ApiDescription` (what pages
show as Input/Output Schema and what the probe samples its request from) plus findings from
`BAZAAR_CODES`. Discovery metadata only decides whether and how an endpoint is indexed: none of
these findings is an `error`, so a bad bazaar extension never makes a 402 unpayable.
Pure: stdlib + jsonschema; never raises.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.models import Finding, JsonValue
from monitor.x402.bazaar_model import (
    _V1_BODY,
    _V1_BODY_TYPE,
    _V1_FIELD_MAPS,
    _V1_HEADERS,
    _V1_QUERY,
    _V1_SNAKE,
    BODY_METHODS,
    BODY_TYPES,
    HTTP_METHODS,
    MAX_OFFERS,
    V1_METHODS,
    ApiDescription,
    _Findings,
    _first,
    _object,
    _upper_method,
    body_kind,
)
from monitor.x402.bazaar_schema import service_metadata_problems
from monitor.x402.bazaar_v2 import _v2
from monitor.x402.codes import type_name

__all__ = [
    "ApiDescription",
    "body_kind",
    "describe",
]


def describe(
    document: Mapping[str, JsonValue] | None,
) -> tuple[ApiDescription | None, list[Finding]]:
    """Return the normalised discovery description of a challenge or catalogue item, and findings.

    v2 documents (x402Version 2, or an undeclared version with `extensions.bazaar`) are read from
    `extensions.bazaar`, falling back to `accepts[].outputSchema` with an info finding; v1 ones
    from the first non-null `accepts[].outputSchema`, falling back to a misplaced
    `extensions.bazaar` with a warning. No metadata → (None, []) plus any resource-metadata
    findings. Findings are warnings or notes only, at most MAX_FINDINGS. Never raises.
    """
    findings = _Findings()
    try:
        return _describe(document, findings), list(findings)
    except (
        Exception
    ) as exc:  # a monitor bug must not stop a check; the junk tests assert it never fires
        findings.add("bazaar-unreadable", "", f"internal error {type(exc).__name__}")
        return None, list(findings)


def _describe(document: JsonValue, findings: _Findings) -> ApiDescription | None:
    if not isinstance(document, Mapping):
        return None
    version = document.get("x402Version")
    extensions = document.get("extensions")
    bazaar = extensions.get("bazaar") if isinstance(extensions, Mapping) else None
    resource = document.get("resource")
    if isinstance(resource, Mapping):
        findings.extend_problems(service_metadata_problems(resource, "resource"))
    findings.extend_problems(service_metadata_problems(document, ""))  # catalogue items
    is_v1 = (
        version == 1
        if isinstance(version, int) and not isinstance(version, bool)
        else bazaar is None
    )
    if not is_v1:
        if bazaar is not None:
            return _v2(bazaar, document, findings)
        description = _v1(document, findings)
        if description is not None:
            problem = "v2 document has discovery metadata only in accepts[].outputSchema"
            findings.add("bazaar-v1-metadata-in-v2", _v1_path(document), problem)
        return description
    description = _v1(document, findings)
    _misplaced_v1(document, findings)
    if description is None and bazaar is not None:
        return _v2(bazaar, document, findings)
    return description


def _misplaced_v1(document: Mapping[str, JsonValue], findings: _Findings) -> None:
    """Warn about v1 discovery metadata that CDP never reads (x402-foundation/x402#2844)."""
    places: list[str] = []
    extensions = document.get("extensions")
    if isinstance(extensions, Mapping) and extensions.get("bazaar") is not None:
        places.append("extensions.bazaar")
    if document.get("outputSchema") is not None:
        places.append("outputSchema")
    accepts = document.get("accepts")
    for index, entry in enumerate(accepts[:MAX_OFFERS] if isinstance(accepts, list) else []):
        extra = entry.get("extra") if isinstance(entry, Mapping) else None
        for key in ("outputSchema", "bazaar"):
            if isinstance(extra, Mapping) and extra.get(key) is not None:
                places.append(f"accepts[{index}].extra.{key}")
    for place in places[:5]:
        problem = f"v1 discovery metadata at {place} is ignored"
        problem += ": CDP reads it only from accepts[].outputSchema"
        findings.add("bazaar-v1-misplaced", place, problem)


def _v1_path(document: Mapping[str, JsonValue]) -> str:
    """Return the path of the outputSchema `_v1` describes."""
    accepts = document.get("accepts")
    for index, entry in enumerate(accepts[:MAX_OFFERS] if isinstance(accepts, list) else []):
        if isinstance(entry, Mapping) and isinstance(entry.get("outputSchema"), Mapping):
            return f"accepts[{index}].outputSchema"
    return "accepts"


def _v1(document: Mapping[str, JsonValue], findings: _Findings) -> ApiDescription | None:
    """Describe the first non-null accepts[].outputSchema (CDP reads only there)."""
    accepts = document.get("accepts")
    for index, entry in enumerate(accepts[:MAX_OFFERS] if isinstance(accepts, list) else []):
        if not isinstance(entry, Mapping):
            continue
        key, raw = _first(entry, ("outputSchema", "output_schema"))
        if raw is None:
            continue
        path = f"accepts[{index}].{key}"
        if isinstance(raw, Mapping):
            return _v1_description(raw, path, findings)
        findings.add("bazaar-field-type", path, f"{path} is {type_name(raw)}, not an object")
    return None


def _v1_description(
    raw: Mapping[str, JsonValue], path: str, findings: _Findings
) -> ApiDescription | None:
    output = raw.get("output")
    node = raw.get("input")
    ipath = f"{path}.input"
    if not isinstance(node, Mapping):
        problem = f"{ipath} is {type_name(node)}, not an object"
        findings.add("bazaar-v1-not-indexable", ipath, problem)
        # Still worth showing the output schema on pages.
        return None if output is None else _output_only(output)
    kind = node.get("type")
    if kind != "http":
        shown = repr(kind)[:40] if isinstance(kind, str) else type_name(kind)
        findings.add("bazaar-v1-not-indexable", f"{ipath}.type", f"input.type is {shown}")
    method = _upper_method(node.get("method"), V1_METHODS)
    if method not in HTTP_METHODS:
        shown = repr(node.get("method"))[:40] if "method" in node else "missing"
        findings.add("bazaar-v1-not-indexable", f"{ipath}.method", f"input.method is {shown}")
    snake = [key for key in _V1_SNAKE if key in node]
    if snake:
        findings.add("bazaar-v1-snake-case", ipath, f"snake_case keys {', '.join(snake)}")
    query_key, query = _first(node, _V1_QUERY)
    body_key, body = _first(node, _V1_BODY)
    if body_key == "properties" and isinstance(node.get("required"), list):
        # The input itself is a JSON Schema of the body: keep its `required` list with it.
        body = {"type": "object", "properties": body, "required": node["required"]}
    headers_key, headers = _first(node, _V1_HEADERS)
    discoverable = node.get("discoverable")
    if discoverable is False:
        problem = "discoverable is false: catalogues skip this endpoint"
        findings.add("bazaar-not-discoverable", f"{ipath}.discoverable", problem)
    elif discoverable is not None and not isinstance(discoverable, bool):
        findings.add("bazaar-field-type", f"{ipath}.discoverable", "discoverable is not a boolean")
    body = _object(body, f"{ipath}.{body_key}", findings, allow_text=True, v1=True)
    return ApiDescription(
        kind="http",
        method=method,
        body_type=_v1_body_type(node, method, body, ipath, findings),
        query_params=_object(query, f"{ipath}.{query_key}", findings, v1=True),
        body=body,
        headers=_object(headers, f"{ipath}.{headers_key}", findings, v1=True),
        output=output,
        discoverable=discoverable is not False,
        source="v1-outputSchema",
        body_kind=body_kind(body, field_map=body_key in _V1_FIELD_MAPS),
    )


def _output_only(output: JsonValue) -> ApiDescription:
    """Describe a v1 outputSchema whose input is unusable: only the output is known."""
    return ApiDescription(
        kind="http",
        output=output,
        source="v1-outputSchema",
    )


def _v1_body_type(
    node: Mapping[str, JsonValue],
    method: str | None,
    body: JsonValue,
    path: str,
    findings: _Findings,
) -> str | None:
    key, declared = _first(node, _V1_BODY_TYPE)
    if declared is None:
        # The v1 TS and Python SDKs default bodyType to json.
        return "json" if method in BODY_METHODS or body is not None else None
    mapped = BODY_TYPES.get(declared.strip().lower()) if isinstance(declared, str) else None
    if mapped is None:
        problem = f"{key} is {str(declared)[:40]!r}, not json, form-data, text (or v1 aliases)"
        findings.add("bazaar-body-type-invalid", f"{path}.{key}", problem)
    return mapped
