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
from dataclasses import dataclass, replace

from monitor.models import Finding, JsonValue, Severity
from monitor.x402.bazaar_codes import BAZAAR_CODES
from monitor.x402.bazaar_schema import (
    Problem,
    route_template_problem,
    schema_problems,
    service_metadata_problems,
)
from monitor.x402.codes import type_name

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
    method: str | None
    """Upper-case HTTP method (http), None for mcp or when none was usable."""
    body_type: str | None
    """"json" | "form-data" | "text" (see BODY_TYPES); v1 body methods default to "json"."""
    query_params: Mapping[str, JsonValue] | None
    body: JsonValue
    headers: Mapping[str, JsonValue] | None
    path_params: Mapping[str, JsonValue] | None
    route_template: str | None
    tool_name: str | None
    """mcp: `toolName`, or the legacy `tool`."""
    tool_input_schema: Mapping[str, JsonValue] | None
    output: JsonValue
    """v1 `outputSchema.output`, v2 `info.output`, as published (None when absent)."""
    discoverable: bool
    """False when v1 says `discoverable: false`."""
    source: str
    """"v1-outputSchema" or "v2-bazaar"."""
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
    """Findings of one `describe` call, capped at MAX_FINDINGS."""

    def add(self, code: str, path: str, problem: str) -> None:
        if len(self) < MAX_FINDINGS:
            rule = BAZAAR_CODES[code]
            self.append(Finding(code, rule.severity, f"{problem}; {rule.fix}", path))

    def extend_problems(self, problems: list[Problem]) -> None:
        for code, path, problem in problems:
            self.add(code, path, problem)


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
        path_params=None,
        route_template=None,
        tool_name=None,
        tool_input_schema=None,
        output=output,
        discoverable=discoverable is not False,
        source="v1-outputSchema",
        body_kind=body_kind(body, field_map=body_key in _V1_FIELD_MAPS),
    )


def _output_only(output: JsonValue) -> ApiDescription:
    """Describe a v1 outputSchema whose input is unusable: only the output is known."""
    return ApiDescription(
        kind="http",
        method=None,
        body_type=None,
        query_params=None,
        body=None,
        headers=None,
        path_params=None,
        route_template=None,
        tool_name=None,
        tool_input_schema=None,
        output=output,
        discoverable=True,
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


def _v2(
    bazaar: JsonValue, document: Mapping[str, JsonValue], findings: _Findings
) -> ApiDescription | None:
    """Describe `extensions.bazaar` and check it against the v2 bazaar spec."""
    base = "extensions.bazaar"
    if not isinstance(bazaar, Mapping):
        findings.add("bazaar-extension-invalid", base, f"{base} is {type_name(bazaar)}")
        return None
    info, schema = bazaar.get("info"), bazaar.get("schema")
    if not isinstance(info, Mapping):
        shown = "missing" if info is None else type_name(info)
        findings.add("bazaar-info-missing", f"{base}.info", f"info is {shown}")
    if not isinstance(schema, Mapping):
        shown = "missing" if schema is None else type_name(schema)
        findings.add("bazaar-schema-missing", f"{base}.schema", f"schema is {shown}")
    template = bazaar.get("routeTemplate")
    if template is not None:
        reason = route_template_problem(template)
        if reason:
            findings.add("bazaar-route-template-invalid", f"{base}.routeTemplate", reason)
    if not isinstance(info, Mapping):
        return None
    description = _v2_info(info, f"{base}.info", findings)
    if description is not None and isinstance(template, str):
        description = replace(description, route_template=template)
    if isinstance(schema, Mapping):
        findings.extend_problems(schema_problems(info, schema, base))
    return description


def _alias(node: Mapping[str, JsonValue], key: str, used: list[str]) -> JsonValue:
    """Return node[key], else its snake_case alias (recording that the alias was used)."""
    if node.get(key) is not None:
        return node[key]
    alias = _V2_ALIASES.get(key, key)
    if node.get(alias) is not None:
        used.append(alias)
        return node[alias]
    return None


def _v2_info(
    info: Mapping[str, JsonValue], ipath: str, findings: _Findings
) -> ApiDescription | None:
    node = info.get("input")
    path = f"{ipath}.input"
    if not isinstance(node, Mapping):
        shown = "missing" if node is None else type_name(node)
        findings.add("bazaar-input-invalid", path, f"info.input is {shown}")
        return None
    kind = node.get("type")
    if kind not in ("http", "mcp"):
        shown = repr(kind)[:40] if isinstance(kind, str) else type_name(kind)
        findings.add("bazaar-input-invalid", f"{path}.type", f"info.input.type is {shown}")
        kind = "mcp" if node.get("toolName") is not None or node.get("tool") is not None else "http"
    used: list[str] = []
    output = _v2_output(info.get("output"), f"{ipath}.output", findings)
    if kind == "mcp":
        description = _v2_mcp(node, path, output, used, findings)
    else:
        description = _v2_http(node, path, output, used, findings)
    if used:
        findings.add("bazaar-v2-snake-case", path, f"snake_case keys {', '.join(used)}")
    return description


def _v2_output(output: JsonValue, path: str, findings: _Findings) -> JsonValue:
    if output is None:
        return None
    if not isinstance(output, Mapping):
        findings.add("bazaar-output-invalid", path, f"info.output is {type_name(output)}")
    elif not isinstance(output.get("type"), str):
        findings.add("bazaar-output-invalid", f"{path}.type", "info.output.type is not a string")
    elif output.get("format") is not None and not isinstance(output.get("format"), str):
        findings.add(
            "bazaar-output-invalid", f"{path}.format", "info.output.format is not a string"
        )
    return output


def _v2_http(
    node: Mapping[str, JsonValue],
    path: str,
    output: JsonValue,
    used: list[str],
    findings: _Findings,
) -> ApiDescription:
    raw_method = node.get("method")
    method = _upper_method(raw_method, HTTP_METHODS)
    if method is None or raw_method != method:
        shown = repr(raw_method)[:40] if raw_method is not None else "missing"
        findings.add("bazaar-method-invalid", f"{path}.method", f"info.input.method is {shown}")
    declared_type = _alias(node, "bodyType", used)
    body = _alias(node, "body", used)
    body_type = BODY_TYPES.get(declared_type.lower()) if isinstance(declared_type, str) else None
    if method in BODY_METHODS:
        if declared_type is None:
            findings.add(
                "bazaar-body-type-invalid", f"{path}.bodyType", f"bodyType missing on {method}"
            )
        elif not (isinstance(declared_type, str) and declared_type in V2_BODY_TYPES):
            shown = (
                repr(declared_type)[:40]
                if isinstance(declared_type, str)
                else type_name(declared_type)
            )
            findings.add("bazaar-body-type-invalid", f"{path}.bodyType", f"bodyType is {shown}")
        if body is None:
            findings.add("bazaar-body-missing", f"{path}.body", f"body missing on {method}")
    elif method is not None and (declared_type is not None or body is not None):
        problem = f"{method} declares a request body (bodyType/body)"
        findings.add("bazaar-body-type-invalid", f"{path}.bodyType", problem)
    body = _object(body, f"{path}.body", findings, allow_text=True)
    return ApiDescription(
        kind="http",
        method=method,
        body_type=body_type,
        query_params=_object(_alias(node, "queryParams", used), f"{path}.queryParams", findings),
        body=body,
        headers=_object(node.get("headers"), f"{path}.headers", findings),
        path_params=_object(_alias(node, "pathParams", used), f"{path}.pathParams", findings),
        route_template=None,
        tool_name=None,
        tool_input_schema=None,
        output=output,
        discoverable=True,
        source="v2-bazaar",
        body_kind=body_kind(body, field_map=False),
    )


def _v2_mcp(
    node: Mapping[str, JsonValue],
    path: str,
    output: JsonValue,
    used: list[str],
    findings: _Findings,
) -> ApiDescription:
    tool = _alias(node, "toolName", used)
    if not (isinstance(tool, str) and tool) and isinstance(node.get("tool"), str) and node["tool"]:
        tool = node["tool"]
        findings.add("bazaar-mcp-legacy-tool", f"{path}.tool", "tool name given as `tool`")
    if not (isinstance(tool, str) and tool):
        findings.add("bazaar-mcp-tool-missing", f"{path}.toolName", "toolName missing or empty")
        tool = None
    input_schema = _alias(node, "inputSchema", used)
    if not isinstance(input_schema, Mapping):
        shown = "missing" if input_schema is None else type_name(input_schema)
        findings.add(
            "bazaar-mcp-input-schema-missing", f"{path}.inputSchema", f"inputSchema is {shown}"
        )
        input_schema = None
    transport = node.get("transport")
    if transport is not None and not (isinstance(transport, str) and transport in MCP_TRANSPORTS):
        shown = repr(transport)[:40] if isinstance(transport, str) else type_name(transport)
        findings.add("bazaar-mcp-transport-invalid", f"{path}.transport", f"transport is {shown}")
    return ApiDescription(
        kind="mcp",
        method=None,
        body_type=None,
        query_params=None,
        body=None,
        headers=None,
        path_params=None,
        route_template=None,
        tool_name=tool,
        tool_input_schema=input_schema,
        output=output,
        discoverable=True,
        source="v2-bazaar",
    )
