"""Build the minimal request a probe sends, from the input schema an endpoint publishes.

Accepted shapes (all untrusted): a v1 `outputSchema.input` object in camelCase or snake_case
(`queryParams`/`query_params`, `bodyFields`/`body_fields`, values often field-definition objects
such as `{"type": "string", "required": true, "example": "x"}`), a v2 bazaar `info.input`
(`{type, method, queryParams?, bodyType?, body?}`, where `body` is a JSON Schema or an example
object), a bare JSON Schema of the body, or the normalised `ApiDescription` of
`monitor.x402.bazaar` (`sample_from_description`). Pure: stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.models import JsonValue
from monitor.x402.bazaar_model import ApiDescription, is_field_definition, is_json_schema

METHODS = frozenset({"GET", "HEAD", "DELETE", "POST", "PUT", "PATCH", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_VALUES = 1000
"""Most field values one sample fills; the rest of a huge or aliased schema is left out."""
MAX_DEPTH = 8
"""Deepest object nesting a sample is built to; deeper required objects are sent as `{}`."""

_QUERY_KEYS = ("queryParams", "query_params", "query", "params")
_FIELD_MAP_KEYS = ("bodyFields", "body_fields", "bodyParams", "body_params")
"""v1 body declarations: maps of field name → definition (or a mere description string)."""
_EXAMPLE_KEYS = ("body", "data")
"""v2 body declarations: a JSON Schema, or an example body to send as it is."""
_FORMAT_SAMPLES: dict[str, str] = {
    "email": "test@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


@dataclass(frozen=True)
class SampleRequest:
    """The declared method (None when undeclared), required query parameters, and a JSON body.

    `body` is None when the request should carry no body (GET/HEAD/DELETE/OPTIONS, or nothing
    declared and no method).
    """

    method: str | None
    query: Mapping[str, str] = field(default_factory=dict)
    body: JsonValue = None


def sample_request(input_schema: Mapping[str, JsonValue] | ApiDescription | None) -> SampleRequest:
    """Return the method and the minimal query/body that satisfy a published input schema.

    An `ApiDescription` is sampled by `sample_from_description`; anything else is read as raw
    published JSON (see the module docstring).

    Only required fields are filled (JSON-Schema `required`, or `required: true` on a field
    definition), each from `default`, `const`, the first `enum`, `example`, the first
    `examples`, else a placeholder of its type. POST/PUT/PATCH with nothing declared get `{}`.
    Never raises: junk yields `SampleRequest(None, {}, None)` or whatever part was readable.
    """
    try:
        if isinstance(input_schema, ApiDescription):
            return _sample_description(input_schema)
        return _sample_request(input_schema)
    except Exception:  # hostile schemas must not stop a probe; the tests feed junk to find bugs
        return SampleRequest(method=None)


def sample_from_description(description: ApiDescription) -> SampleRequest:
    """Return the minimal request for a normalised description (same rules as sample_request).

    http: the method (None when unusable), required query parameters — v2 bazaar `queryParams`
    are example values and are sent as published, v1 ones are definitions or descriptions and
    only required ones are filled — and the body per `body_kind` ("example" sent as published,
    a string too; "schema"/"fields" reduced to required fields). mcp: a JSON-RPC `tools/call`
    POST naming the tool, with arguments sampled from its inputSchema; the paywall of an MCP
    server may answer inside JSON-RPC rather than with HTTP 402. Never raises.
    """
    return sample_request(description)


def _sample_description(description: ApiDescription) -> SampleRequest:
    sampler = _Sampler()
    if description.kind == "mcp":
        schema = description.tool_input_schema
        arguments = sampler.fields(schema, examples=False) if schema is not None else {}
        params = {"name": description.tool_name, "arguments": arguments}
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        return SampleRequest(method="POST", body=call)
    method = _method(description.method)
    examples = description.source == "v2-bazaar"
    query_fields = sampler.fields(description.query_params, examples=examples)
    texts = {name: _query(value) for name, value in query_fields.items()}
    query = {name: text for name, text in texts.items() if text is not None}
    declared = description.body
    body: JsonValue = None
    if description.body_kind == "example":
        body = dict(declared) if isinstance(declared, Mapping) else declared
    elif description.body_kind is not None:
        body = sampler.fields(declared, examples=False)
    if method in BODY_METHODS and body is None:
        body = {}
    elif method is not None and method not in BODY_METHODS:
        body = None
    return SampleRequest(method=method, query=query, body=body)


def _sample_request(input_schema: JsonValue) -> SampleRequest:
    schema = _unwrap(input_schema)
    if schema is None:
        return SampleRequest(method=None)
    method = _method(schema.get("method"))
    query: dict[str, str] = {}
    body: JsonValue = None
    sampler = _Sampler()
    if method is None and schema.get("type") != "http" and is_json_schema(schema):
        body = sampler.sample_object(schema, 0)
    else:
        query_fields = sampler.fields(_first(schema, _QUERY_KEYS), examples=False)
        texts = {name: _query(value) for name, value in query_fields.items()}
        query = {name: text for name, text in texts.items() if text is not None}
        body = sampler.body(schema)
    if method in BODY_METHODS and body is None:
        body = {}
    elif method is not None and method not in BODY_METHODS:
        body = None
    return SampleRequest(method=method, query=query, body=body)


def _unwrap(schema: JsonValue) -> Mapping[str, JsonValue] | None:
    """Return the request description, unwrapping `{input: …}` and `{info: {input: …}}`."""
    for _ in range(2):
        if not isinstance(schema, Mapping):
            return None
        if "method" in schema or "properties" in schema:
            return schema
        inner = schema.get("input")
        if not isinstance(inner, Mapping):
            info = schema.get("info")
            inner = info.get("input") if isinstance(info, Mapping) else None
        if not isinstance(inner, Mapping):
            return schema
        schema = inner
    return schema if isinstance(schema, Mapping) else None


def _method(value: JsonValue) -> str | None:
    if not isinstance(value, str):
        return None
    method = value.strip().upper()
    return method if method in METHODS else None


def _first(schema: Mapping[str, JsonValue], keys: tuple[str, ...]) -> JsonValue:
    return next((schema[key] for key in keys if schema.get(key) is not None), None)


def _named_definition(item: JsonValue) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get("name"), str)


class _Sampler:
    """Sample values under a shared budget, so aliased (YAML) or huge schemas stay cheap."""

    def __init__(self, budget: int = MAX_VALUES) -> None:
        self.budget = budget

    def body(self, schema: Mapping[str, JsonValue]) -> JsonValue:
        """Return the sampled body, or None when the schema declares none."""
        fields = _first(schema, _FIELD_MAP_KEYS)
        if fields is not None:
            return self.fields(fields, examples=False)
        declared = _first(schema, _EXAMPLE_KEYS)
        if isinstance(declared, Mapping):
            return self.fields(declared, examples=True)
        return None

    def fields(self, declared: JsonValue, *, examples: bool) -> dict[str, JsonValue]:
        """Sample the required fields of a field declaration (schema, definition map or list).

        With `examples`, a plain object that is neither a schema nor a map of definitions is an
        example body (v2 bazaar `info.input.body`) and is sent as it is.
        """
        if isinstance(declared, list):  # [{name, type, required}, …] as some sellers publish
            named = {item["name"]: item for item in declared if _named_definition(item)}
            return self.fields(named, examples=False)
        if not isinstance(declared, Mapping):
            return {}
        if is_json_schema(declared):
            sampled = self.sample_object(declared, 0)
            return sampled if isinstance(sampled, dict) else {}
        if examples and not any(is_field_definition(value) for value in declared.values()):
            return dict(declared)
        required = {
            str(name): spec
            for name, spec in declared.items()
            if isinstance(spec, Mapping) and spec.get("required") is True
        }
        return self.sample_fields(required, 1)

    def sample_object(self, schema: Mapping[str, JsonValue], depth: int) -> JsonValue:
        """Return an object holding the required properties of a JSON Schema object."""
        if depth >= MAX_DEPTH:
            return {}
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
        # Field-definition style (`required: true` on the property) is common in v1 schemas.
        names += [
            str(name)
            for name, spec in properties.items()
            if isinstance(spec, Mapping) and spec.get("required") is True
        ]
        return self.sample_fields({name: properties.get(name) for name in names}, depth + 1)

    def sample_fields(self, specs: Mapping[str, JsonValue], depth: int) -> dict[str, JsonValue]:
        """Sample each named spec while the budget lasts (later fields are left out)."""
        sampled: dict[str, JsonValue] = {}
        for name, spec in specs.items():
            if self.budget <= 0:
                break
            self.budget -= 1
            sampled[name] = self.sample_value(spec, depth)
        return sampled

    def sample_value(self, spec: JsonValue, depth: int) -> JsonValue:
        """Return `default`, `const`, first `enum`, `example`, first `examples`, else a placeholder.

        A null default or example is skipped: a required field sent as null rarely validates.
        """
        if not isinstance(spec, Mapping):
            return "test"
        for key, many in (("default", False), ("const", False), ("enum", True)):
            value = spec.get(key)
            if many and isinstance(value, list) and value:
                return value[0]
            if not many and value is not None:
                return value
        if spec.get("example") is not None:
            return spec["example"]
        examples = spec.get("examples")
        if isinstance(examples, list) and examples:
            return examples[0]
        return self.placeholder(spec, depth)

    def placeholder(self, spec: Mapping[str, JsonValue], depth: int) -> JsonValue:
        """Return a type-appropriate value for a schema without default or example."""
        kind = spec.get("type")
        if isinstance(kind, list):  # ["string", "null"]: the first non-null type
            kind = next((k for k in kind if isinstance(k, str) and k != "null"), None)
        if kind is None:
            for key in ("oneOf", "anyOf", "allOf"):
                options = spec.get(key)
                if isinstance(options, list) and options and depth < MAX_DEPTH:
                    return self.sample_value(options[0], depth + 1)
            if isinstance(spec.get("properties"), Mapping):
                kind = "object"
        minimum = spec.get("minimum")
        if isinstance(minimum, bool) or not isinstance(minimum, int | float):
            minimum = None
        if kind == "integer":
            return int(minimum) if minimum is not None and float(minimum).is_integer() else 1
        if kind == "number":
            return minimum if minimum is not None else 1
        if kind == "boolean":
            return False
        if kind == "array":
            return []
        if kind == "object":
            return self.sample_object(spec, depth)
        if kind == "null":
            return None
        return _string(spec)


def _string(spec: Mapping[str, JsonValue]) -> str:
    text = _FORMAT_SAMPLES.get(str(spec.get("format")), "test")
    min_length = spec.get("minLength")
    if isinstance(min_length, int) and not isinstance(min_length, bool):
        text = text.ljust(min(min_length, 64), "x")
    return text


def _query(value: JsonValue) -> str | None:
    """Return a query-string form of a sampled value; None drops the parameter."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)
