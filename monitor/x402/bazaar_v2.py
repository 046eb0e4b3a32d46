"""Read the v2 `extensions.bazaar` discovery extension into an ApiDescription."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from monitor.models import JsonValue
from monitor.x402.bazaar_model import (
    _V2_ALIASES,
    BODY_METHODS,
    BODY_TYPES,
    HTTP_METHODS,
    MCP_TRANSPORTS,
    V2_BODY_TYPES,
    ApiDescription,
    _Findings,
    _object,
    _upper_method,
    body_kind,
)
from monitor.x402.bazaar_schema import (
    route_template_problem,
    schema_problems,
)
from monitor.x402.codes import type_name


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
        output=output,
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
        tool_name=tool,
        tool_input_schema=input_schema,
        output=output,
        source="v2-bazaar",
    )
