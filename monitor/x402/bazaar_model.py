"""The shared vocabulary of the Bazaar normaliser: ApiDescription, constants, helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.models import Finding, JsonValue, Severity
from monitor.x402.bazaar_codes import BAZAAR_CODES
from monitor.x402.bazaar_schema import Problem
from monitor.x402.codes import bounded_finding, type_name

_W, _I = Severity.WARNING, Severity.INFO


MAX_OFFERS = 100
"""Only this many `accepts` entries are searched for a v1 outputSchema (as in decode.py)."""
MAX_FINDINGS = 50
HTTP_METHODS = frozenset({"GET", "HEAD", "DELETE", "POST", "PUT", "PATCH"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
V1_METHODS = HTTP_METHODS | {"OPTIONS"}
"""The v1 TS schema also allows OPTIONS; the description keeps it, CDP does not index it."""
BODY_TYPES: dict[str, str] = {
    "json": "json",
    "application/json": "json",
    "form-data": "form-data",
    "multipart-form-data": "form-data",
    "multipart/form-data": "form-data",
    "application/x-www-form-urlencoded": "form-data",
    "text": "text",
    "text/plain": "text",
    "binary": "text",
}
"""Published bodyType (lower-cased) → "json" | "form-data" | "text". v1's `binary` maps to
"text" — a raw, non-JSON body — where the SDK's normaliser falls through to "json"."""
V2_BODY_TYPES = frozenset({"json", "form-data", "text"})
MCP_TRANSPORTS = frozenset({"streamable-http", "sse"})

_V1_QUERY = ("queryParams", "query_params", "query", "params")
_V1_BODY = ("bodyFields", "body_fields", "bodyParams", "body_params", "body", "data", "properties")
_V1_FIELD_MAPS = frozenset({"bodyFields", "body_fields", "bodyParams", "body_params", "properties"})
_V1_HEADERS = ("headerFields", "header_fields", "headers")
_V1_BODY_TYPE = ("bodyType", "body_type")
_V1_SNAKE = ("query_params", "body_type", "body_fields", "body_params", "header_fields")
_V2_ALIASES = {
    "queryParams": "query_params",
    "bodyType": "body_type",
    "pathParams": "path_params",
    "toolName": "tool_name",
    "inputSchema": "input_schema",
}
_DEFINITION_KEYS = frozenset(
    {"type", "required", "description", "example", "examples", "default", "enum", "const"}
)


@dataclass(frozen=True)
class ApiDescription:
    """One normalised description of how to call an endpoint and what it returns.

    Values are kept as published (untrusted JSON); only key names, the method's case and
    `bodyType` are normalised. `body_kind` says how to read `body`: "schema" (a JSON Schema),
    "fields" (a map of field name → definition or description, v1 style), "example" (a literal
    body to send as is), or None when there is no body.
    """

    kind: str
    """"http" or "mcp"."""
    source: str
    """"v1-outputSchema" or "v2-bazaar"."""
    method: str | None = None
    """Upper-case HTTP method (http), None for mcp or when none was usable."""
    body_type: str | None = None
    """"json" | "form-data" | "text" (see BODY_TYPES); v1 body methods default to "json"."""
    query_params: Mapping[str, JsonValue] | None = None
    body: JsonValue = None
    headers: Mapping[str, JsonValue] | None = None
    path_params: Mapping[str, JsonValue] | None = None
    route_template: str | None = None
    tool_name: str | None = None
    """mcp: `toolName`, or the legacy `tool`."""
    tool_input_schema: Mapping[str, JsonValue] | None = None
    output: JsonValue = None
    """v1 `outputSchema.output`, v2 `info.output`, as published (None when absent)."""
    discoverable: bool = True
    """False when v1 says `discoverable: false`."""
    body_kind: str | None = None


def is_field_definition(node: JsonValue) -> bool:
    """Return whether a value looks like a field definition (`{"type": …, "required": …}`)."""
    return isinstance(node, Mapping) and not _DEFINITION_KEYS.isdisjoint(node)


def is_json_schema(node: Mapping[str, JsonValue]) -> bool:
    """Tell a JSON Schema object from a field map that merely has a field called `properties`."""
    if node.get("type") == "object":
        return True
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        return False
    return isinstance(node.get("required"), list) or not is_field_definition(properties)


def body_kind(body: JsonValue, *, field_map: bool) -> str | None:
    """Classify a published body: "schema", "fields", "example" or None (see ApiDescription).

    `field_map` is True when the body came from a v1 field-map key such as `bodyFields`.
    """
    if body is None:
        return None
    if not isinstance(body, Mapping):
        return "example"
    if is_json_schema(body):
        return "schema"
    if field_map or any(is_field_definition(value) for value in body.values()):
        return "fields"
    return "example"


class _Findings(list[Finding]):
    """Findings of one `describe` call, capped at MAX_FINDINGS, each one bounded line."""

    def add(self, code: str, path: str, problem: str) -> None:
        if len(self) < MAX_FINDINGS:
            rule = BAZAAR_CODES[code]
            # Paths hold the seller's own keys (info does not match schema at `a.<key>`).
            self.append(bounded_finding(code, rule.severity, f"{problem}; {rule.fix}", path))

    def extend_problems(self, problems: list[Problem]) -> None:
        for code, path, problem in problems:
            self.add(code, path, problem)


def _first(node: Mapping[str, JsonValue], keys: tuple[str, ...]) -> tuple[str, JsonValue]:
    """Return (key, value) of the first key with a non-null value ("", None when none)."""
    return next(((key, node[key]) for key in keys if node.get(key) is not None), ("", None))


def _named_map(value: JsonValue) -> JsonValue:
    """Turn v1 `[{name, …}, …]` (as some sellers publish fields) into `{name: {…}}`."""
    if isinstance(value, list) and any(
        isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in value
    ):
        return {
            item["name"]: item
            for item in value
            if isinstance(item, Mapping) and isinstance(item.get("name"), str)
        }
    return value


def _object(
    value: JsonValue, path: str, findings: _Findings, *, allow_text: bool = False, v1: bool = False
) -> JsonValue:
    """Return an object-typed field (or a string where allowed); anything else → None + finding.

    v1 fields may also be lists of named definitions (converted); v2 follows the spec strictly.
    """
    if v1:
        value = _named_map(value)
    if value is None or isinstance(value, Mapping) or (allow_text and isinstance(value, str)):
        return value
    findings.add("bazaar-field-type", path, f"{path} is {type_name(value)}, not an object")
    return None


def _upper_method(value: JsonValue, allowed: frozenset[str]) -> str | None:
    if not isinstance(value, str):
        return None
    method = value.strip().upper()
    return method if method in allowed else None
