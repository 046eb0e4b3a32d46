"""Discovery metadata: v1 outputSchema and v2 bazaar normalised into one ApiDescription."""

from __future__ import annotations

import copy
import json
import random
import socket
from pathlib import Path
from typing import Any

import pytest

from monitor.models import Finding, Severity
from monitor.x402 import bazaar_schema
from monitor.x402.bazaar import ApiDescription, describe
from monitor.x402.bazaar_codes import BAZAAR_CODES
from monitor.x402.bazaar_schema import (
    MAX_NODES,
    route_template_problem,
    safe_pattern,
    validate_info,
)
from monitor.x402.codes import CODES
from monitor.x402.sampling import SampleRequest, sample_from_description, sample_request

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
HTTP = {"type": "http"}


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


# v2 examples as the bazaar spec (§4.4) and the official SDK 2.25 (enriched with the method) emit.
GET_EXTENSION: dict[str, Any] = {
    "info": {
        "input": {"type": "http", "method": "GET", "queryParams": {"city": "Paris"}},
        "output": {"type": "json", "example": {"temp": 20}},
    },
    "schema": {
        "$schema": DRAFT,
        "type": "object",
        "properties": {
            "input": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "const": "http"},
                    "method": {"type": "string", "enum": ["GET", "HEAD", "DELETE"]},
                    "queryParams": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                "required": ["type", "method"],
                "additionalProperties": False,
            },
            "output": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "example": {"type": "object"}},
                "required": ["type"],
            },
        },
        "required": ["input"],
    },
}
POST_EXTENSION: dict[str, Any] = {
    "info": {
        "input": {"type": "http", "method": "POST", "bodyType": "json", "body": {"text": "hi"}}
    },
    "schema": {
        "$schema": DRAFT,
        "type": "object",
        "properties": {
            "input": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "const": "http"},
                    "method": {"type": "string", "enum": ["POST", "PUT", "PATCH"]},
                    "bodyType": {"type": "string", "enum": ["json", "form-data", "text"]},
                    "body": {"properties": {"text": {"type": "string"}}, "required": ["text"]},
                    "pathParams": {"type": "object"},
                },
                "required": ["type", "method", "bodyType", "body"],
                "additionalProperties": False,
            }
        },
        "required": ["input"],
    },
}
MCP_EXTENSION: dict[str, Any] = {
    "info": {
        "input": {
            "type": "mcp",
            "toolName": "search",
            "description": "Search",
            "transport": "streamable-http",
            "inputSchema": {
                "type": "object",
                "properties": {"q": {"type": "string", "examples": ["btc"]}},
                "required": ["q"],
            },
        }
    },
    "schema": {
        "$schema": DRAFT,
        "type": "object",
        "properties": {
            "input": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "const": "mcp"},
                    "toolName": {"type": "string"},
                    "inputSchema": {"type": "object"},
                    "description": {"type": "string"},
                    "transport": {"type": "string"},
                },
                "required": ["type", "toolName", "inputSchema"],
            }
        },
        "required": ["input"],
    },
}


def _v2(extension: Any, **resource: Any) -> dict[str, Any]:
    return {
        "x402Version": 2,
        "resource": {"url": "https://api.example.com/x", **resource},
        "accepts": [{"scheme": "exact", "network": "eip155:8453", "amount": "1"}],
        "extensions": {"bazaar": extension},
    }


def _edit(extension: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of `extension` with the dotted `path` set (a `...` value deletes it)."""
    edited = copy.deepcopy(extension)
    *parents, last = path.split(".")
    node = edited
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return edited


def _v1(input_: Any, output: Any = None) -> dict[str, Any]:
    return {
        "x402Version": 1,
        "accepts": [{"scheme": "exact", "outputSchema": {"input": input_, "output": output}}],
    }


# --- fixtures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "01-v1-evm-spec-base-sepolia.json",
        "02b-v2-evm-spec-decoded.json",
        "G1-v2-python-sdk-2.25-fastapi-decoded.json",
        "13-v1-evm-svm-real-skill-registry-dual-rail.json",
    ],
)
def test_fixtures_without_discovery_metadata(name: str) -> None:
    assert describe(_fixture(name)) == (None, [])


def test_fixture_08_snake_case_get_with_query_descriptions() -> None:
    description, findings = describe(_fixture("08-v1-evm-real-aeon-empty-payto-INVALID.json"))
    assert description is not None
    assert description.kind == "http"
    assert description.method == "GET"
    assert description.query_params == {
        "appId": "Application ID for identifying request source",
        "qrCode": "QR code data containing payment information",
        "address": "Ethereum address to receive payment",
    }
    # body_type/body_fields/header_fields are null: absent, not errors
    assert (description.body_type, description.body, description.headers) == (None, None, None)
    assert description.body_kind is None
    assert description.discoverable is True
    assert description.source == "v1-outputSchema"
    assert isinstance(description.output, dict)
    assert set(description.output) == {"code", "msg", "model", "traceId"}
    assert [(f.code, f.severity, f.path) for f in findings] == [
        ("bazaar-v1-snake-case", Severity.INFO, "accepts[0].outputSchema.input")
    ]
    assert "query_params, body_type, body_fields, header_fields" in findings[0].message
    assert sample_request(description) == SampleRequest("GET", {}, None)


def test_fixture_11_post_json_body_fields() -> None:
    description, findings = describe(_fixture("11-v1-evm-real-truecast-post-bodyfields.json"))
    assert findings == []
    assert description is not None
    assert (description.method, description.body_type, description.body_kind) == (
        "POST",
        "json",
        "fields",
    )
    assert isinstance(description.body, dict)
    assert set(description.body) == {"prompt", "castHash", "storeToPinata", "runGuardrail"}
    assert description.body["prompt"]["required"] is True
    assert isinstance(description.output, dict)
    assert description.output["required"][:2] == ["query", "reply"]
    assert sample_request(description) == SampleRequest("POST", {}, {"prompt": "test"})


def test_fixture_05_catalogue_item_with_v1_metadata_in_v2_item() -> None:
    description, findings = describe(_fixture("05-discovery-item-cdp-docs-mixed-v1-v2.json"))
    assert description == ApiDescription(
        kind="http",
        method="GET",
        body_type=None,
        query_params=None,
        body=None,
        headers=None,
        path_params=None,
        route_template=None,
        tool_name=None,
        tool_input_schema=None,
        output=None,
        discoverable=True,
        source="v1-outputSchema",
    )
    assert [(f.code, f.severity, f.path) for f in findings] == [
        ("bazaar-v1-metadata-in-v2", Severity.INFO, "accepts[0].outputSchema")
    ]


def test_seed_page_input_schema_normalises_and_samples() -> None:
    seed = {
        "bodyFields": {
            "prompt": {"type": "string", "required": True, "example": "a cat"},
            "seed": {"type": "integer", "required": False},
        },
        "bodyType": "json",
        "method": "POST",
        "type": "http",
    }
    description, findings = describe(_v1(seed, {"jobId": {"type": "string"}}))
    assert findings == []
    assert description is not None
    assert description.output == {"jobId": {"type": "string"}}
    assert sample_from_description(description) == SampleRequest("POST", {}, {"prompt": "a cat"})


# --- v1 normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_", "field", "expected"),
    [
        ({**HTTP, "method": "get", "query": {"a": "x"}}, "query_params", {"a": "x"}),
        ({**HTTP, "method": "GET", "params": {"a": "x"}}, "query_params", {"a": "x"}),
        ({**HTTP, "method": "POST", "bodyParams": {"b": {}}}, "body", {"b": {}}),
        ({**HTTP, "method": "POST", "data": {"b": 1}}, "body", {"b": 1}),
        ({**HTTP, "method": "POST", "body_fields": {"b": {}}}, "body", {"b": {}}),
        (
            {**HTTP, "method": "POST", "properties": {"b": {}}, "required": ["b"]},
            "body",
            {"type": "object", "properties": {"b": {}}, "required": ["b"]},
        ),
        (
            {**HTTP, "method": "POST", "bodyFields": [{"name": "b", "type": "string"}]},
            "body",
            {"b": {"name": "b", "type": "string"}},
        ),
        ({**HTTP, "method": "GET", "headerFields": {"X-Key": "k"}}, "headers", {"X-Key": "k"}),
        ({**HTTP, "method": "GET", "header_fields": {"X-Key": "k"}}, "headers", {"X-Key": "k"}),
        ({**HTTP, "method": "GET", "headers": {"X-Key": "k"}}, "headers", {"X-Key": "k"}),
        ({**HTTP, "method": "post"}, "method", "POST"),
        ({**HTTP, "method": "POST"}, "body_type", "json"),
        ({**HTTP, "method": "POST", "bodyType": "multipart-form-data"}, "body_type", "form-data"),
        ({**HTTP, "method": "POST", "bodyType": "form-data"}, "body_type", "form-data"),
        ({**HTTP, "method": "POST", "body_type": "Text"}, "body_type", "text"),
        ({**HTTP, "method": "POST", "bodyType": "binary"}, "body_type", "text"),
        ({**HTTP, "method": "POST", "bodyType": "application/json"}, "body_type", "json"),
        ({**HTTP, "method": "GET"}, "body_type", None),
        ({**HTTP, "method": "GET", "discoverable": False}, "discoverable", False),
        ({**HTTP, "method": "GET", "discoverable": None}, "discoverable", True),
    ],
)  # fmt: skip
def test_v1_key_aliases_and_normalisation(input_: Any, field: str, expected: Any) -> None:
    description, _ = describe(_v1(input_))
    assert description is not None
    assert getattr(description, field) == expected


@pytest.mark.parametrize(
    ("document", "codes"),
    [
        (_v1({"type": "http"}), ["bazaar-v1-not-indexable"]),
        (_v1({**HTTP, "method": "FETCH"}), ["bazaar-v1-not-indexable"]),
        (_v1({**HTTP, "method": "OPTIONS"}), ["bazaar-v1-not-indexable"]),
        (_v1({"method": "GET"}), ["bazaar-v1-not-indexable"]),
        (_v1({"type": "mcp", "method": "GET"}), ["bazaar-v1-not-indexable"]),
        (_v1("GET", {"a": 1}), ["bazaar-v1-not-indexable"]),
        (_v1({**HTTP, "method": "GET", "query_params": {}}), ["bazaar-v1-snake-case"]),
        (_v1({**HTTP, "method": "GET", "discoverable": False}), ["bazaar-not-discoverable"]),
        (_v1({**HTTP, "method": "GET", "discoverable": "no"}), ["bazaar-field-type"]),
        (_v1({**HTTP, "method": "GET", "queryParams": "a=1"}), ["bazaar-field-type"]),
        (_v1({**HTTP, "method": "POST", "bodyType": "xml"}), ["bazaar-body-type-invalid"]),
        (_v1({**HTTP, "method": "GET", "headerFields": 3}), ["bazaar-field-type"]),
        ({"x402Version": 1, "accepts": [{"outputSchema": "GET /x"}]}, ["bazaar-field-type"]),
        (
            {"x402Version": 1, "accepts": [{}], "extensions": {"bazaar": GET_EXTENSION}},
            ["bazaar-v1-misplaced"],
        ),
        (
            {**_v1({**HTTP, "method": "GET"}), "outputSchema": {"input": {}}},
            ["bazaar-v1-misplaced"],
        ),
        (
            {"x402Version": 1, "accepts": [{"extra": {"outputSchema": {"input": {}}}}]},
            ["bazaar-v1-misplaced"],
        ),
    ],
)  # fmt: skip
def test_v1_findings(document: dict[str, Any], codes: list[str]) -> None:
    _, findings = describe(document)
    assert _codes(findings) == codes


def test_v1_with_misplaced_bazaar_still_describes_it_for_pages_and_the_probe() -> None:
    document = {"x402Version": 1, "accepts": [{}], "extensions": {"bazaar": POST_EXTENSION}}
    description, findings = describe(document)
    assert description is not None
    assert description.source == "v2-bazaar"
    assert findings[0].path == "extensions.bazaar"
    assert "only from accepts[].outputSchema" in findings[0].message


def test_v1_uses_the_first_non_null_output_schema() -> None:
    document = {
        "x402Version": 1,
        "accepts": [
            "junk",
            {"outputSchema": None},
            {"outputSchema": {"input": {"type": "http", "method": "PUT"}}},
            {"outputSchema": {"input": {"type": "http", "method": "GET"}}},
        ],
    }
    description, findings = describe(document)
    assert description is not None
    assert (description.method, findings) == ("PUT", [])


# --- v2 bazaar --------------------------------------------------------------------------------


def test_v2_get_example_is_valid() -> None:
    description, findings = describe(_v2(GET_EXTENSION))
    assert findings == []
    assert description is not None
    assert (description.kind, description.method, description.source) == (
        "http",
        "GET",
        "v2-bazaar",
    )
    assert description.query_params == {"city": "Paris"}
    assert description.output == {"type": "json", "example": {"temp": 20}}
    # v2 queryParams are example values: the probe sends them
    assert sample_request(description) == SampleRequest("GET", {"city": "Paris"}, None)


def test_v2_post_example_is_valid_with_route_template() -> None:
    extension = {**POST_EXTENSION, "routeTemplate": "/users/:userId"}
    extension = _edit(extension, "info.input.pathParams", {"userId": "42"})
    description, findings = describe(_v2(extension))
    assert findings == []
    assert description is not None
    assert (description.method, description.body_type, description.body_kind) == (
        "POST",
        "json",
        "example",
    )
    assert (description.route_template, description.path_params) == (
        "/users/:userId",
        {"userId": "42"},
    )
    assert sample_request(description) == SampleRequest("POST", {}, {"text": "hi"})


def test_v2_mcp_example_is_valid_and_samples_a_tool_call() -> None:
    description, findings = describe(_v2(MCP_EXTENSION))
    assert findings == []
    assert description is not None
    assert (description.kind, description.method, description.tool_name) == ("mcp", None, "search")
    assert description.tool_input_schema == MCP_EXTENSION["info"]["input"]["inputSchema"]
    assert sample_from_description(description) == SampleRequest(
        "POST",
        {},
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"q": "btc"}},
        },
    )


def test_v2_legacy_tool_is_accepted_with_a_note() -> None:
    extension = _edit(MCP_EXTENSION, "info.input.toolName", ...)
    extension = _edit(extension, "info.input.tool", "search")
    extension = _edit(extension, "schema.properties.input.required", ["type", "inputSchema"])
    description, findings = describe(_v2(extension))
    assert description is not None
    assert description.tool_name == "search"
    assert [(f.code, f.severity) for f in findings] == [("bazaar-mcp-legacy-tool", Severity.INFO)]


@pytest.mark.parametrize(
    ("document", "code", "path"),
    [
        (_v2("bazaar"), "bazaar-extension-invalid", "extensions.bazaar"),
        (_v2({"schema": {}}), "bazaar-info-missing", "extensions.bazaar.info"),
        (_v2({"info": GET_EXTENSION["info"]}), "bazaar-schema-missing", "extensions.bazaar.schema"),
        (_v2(_edit(GET_EXTENSION, "info.input", ...)), "bazaar-input-invalid",
         "extensions.bazaar.info.input"),
        (_v2(_edit(GET_EXTENSION, "info.input.type", "grpc")), "bazaar-input-invalid",
         "extensions.bazaar.info.input.type"),
        (_v2(_edit(GET_EXTENSION, "info.input.method", ...)), "bazaar-method-invalid",
         "extensions.bazaar.info.input.method"),
        (_v2(_edit(GET_EXTENSION, "info.input.method", "get")), "bazaar-method-invalid",
         "extensions.bazaar.info.input.method"),
        (_v2(_edit(GET_EXTENSION, "info.input.method", "OPTIONS")), "bazaar-method-invalid",
         "extensions.bazaar.info.input.method"),
        (_v2(_edit(POST_EXTENSION, "info.input.bodyType", ...)), "bazaar-body-type-invalid",
         "extensions.bazaar.info.input.bodyType"),
        (_v2(_edit(POST_EXTENSION, "info.input.bodyType", "multipart-form-data")),
         "bazaar-body-type-invalid", "extensions.bazaar.info.input.bodyType"),
        (_v2(_edit(GET_EXTENSION, "info.input.bodyType", "json")), "bazaar-body-type-invalid",
         "extensions.bazaar.info.input.bodyType"),
        (_v2(_edit(POST_EXTENSION, "info.input.body", ...)), "bazaar-body-missing",
         "extensions.bazaar.info.input.body"),
        (_v2(_edit(POST_EXTENSION, "info.input.body", 7)), "bazaar-field-type",
         "extensions.bazaar.info.input.body"),
        (_v2(_edit(GET_EXTENSION, "info.input.headers", ["X-Key"])), "bazaar-field-type",
         "extensions.bazaar.info.input.headers"),
        (_v2(_edit(_edit(GET_EXTENSION, "info.input.queryParams", ...), "info.input.query_params",
                   {"city": "Paris"})), "bazaar-v2-snake-case",
         "extensions.bazaar.info.input"),
        (_v2(_edit(MCP_EXTENSION, "info.input.toolName", "")), "bazaar-mcp-tool-missing",
         "extensions.bazaar.info.input.toolName"),
        (_v2(_edit(MCP_EXTENSION, "info.input.inputSchema", "q: string")),
         "bazaar-mcp-input-schema-missing", "extensions.bazaar.info.input.inputSchema"),
        (_v2(_edit(MCP_EXTENSION, "info.input.transport", "stdio")), "bazaar-mcp-transport-invalid",
         "extensions.bazaar.info.input.transport"),
        (_v2(_edit(GET_EXTENSION, "info.output", "json")), "bazaar-output-invalid",
         "extensions.bazaar.info.output"),
        (_v2(_edit(GET_EXTENSION, "info.output.type", ...)), "bazaar-output-invalid",
         "extensions.bazaar.info.output.type"),
        (_v2(_edit(GET_EXTENSION, "info.output.format", 3)), "bazaar-output-invalid",
         "extensions.bazaar.info.output.format"),
        (_v2(_edit(GET_EXTENSION, "schema.required", [])), "bazaar-schema-incomplete",
         "extensions.bazaar.schema"),
        (_v2(_edit(GET_EXTENSION, "schema", {"type": "object"})), "bazaar-schema-incomplete",
         "extensions.bazaar.schema"),
        (_v2(_edit(GET_EXTENSION, "schema.properties.input.properties.method", ...)),
         "bazaar-schema-incomplete", "extensions.bazaar.schema"),
        (_v2(_edit(GET_EXTENSION, "info.input.extra", 1)), "bazaar-info-schema-mismatch",
         "extensions.bazaar.info.input"),
        (_v2(_edit(GET_EXTENSION, "schema.$schema", "http://json-schema.org/draft-07/schema#")),
         "bazaar-schema-dialect", "extensions.bazaar.schema.$schema"),
        (_v2(_edit(GET_EXTENSION, "schema.properties.input.type", "objekt")),
         "bazaar-schema-invalid", "extensions.bazaar.schema.properties.input.type"),
        (_v2(_edit(GET_EXTENSION, "schema.$defs", {"a": {"$ref": "#/$defs/a"}})), None, None),
        (_v2({**GET_EXTENSION, "routeTemplate": "users/:id"}), "bazaar-route-template-invalid",
         "extensions.bazaar.routeTemplate"),
        (_v2(GET_EXTENSION, serviceName="x" * 33), "bazaar-service-name-invalid",
         "resource.serviceName"),
        (_v2(GET_EXTENSION, tags=["a", "b", "c", "d", "e", "f"]), "bazaar-tags-invalid",
         "resource.tags"),
        (_v2(GET_EXTENSION, tags=["ok", "é"]), "bazaar-tags-invalid", "resource.tags"),
        (_v2(GET_EXTENSION, iconUrl="http://127.0.0.1/i.png"), "bazaar-icon-url-invalid",
         "resource.iconUrl"),
    ],
)  # fmt: skip
def test_v2_each_code_from_a_minimal_failing_input(
    document: dict[str, Any], code: str | None, path: str | None
) -> None:
    _, findings = describe(document)
    if code is None:  # a same-document $ref (unused here) is fine
        assert findings == []
        return
    assert (code, path) in [(f.code, f.path) for f in findings]
    assert all(f.severity is not Severity.ERROR for f in findings)


def test_v2_valid_service_metadata_passes() -> None:
    document = _v2(
        GET_EXTENSION,
        serviceName="Weather",
        tags=["weather", "geo"],
        iconUrl="https://cdn.example.com/w.png",
    )
    assert describe(document)[1] == []


def test_catalogue_item_top_level_service_metadata_is_checked() -> None:
    item = {
        **_fixture("05-discovery-item-cdp-docs-mixed-v1-v2.json"),
        "iconUrl": "http://localhost/x",
    }
    assert ("bazaar-icon-url-invalid", "iconUrl") in [(f.code, f.path) for f in describe(item)[1]]


def test_schema_describing_the_body_gets_the_specific_fix() -> None:
    body_schema = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }
    description, findings = describe(_v2({**POST_EXTENSION, "schema": body_schema}))
    assert description is not None  # info is still usable for pages and the probe
    assert _codes(findings) == ["bazaar-schema-describes-body"]
    assert "same fields as info.input" in findings[0].message
    assert "required: [input]" in findings[0].message


def test_mismatch_path_points_into_info() -> None:
    extension = _edit(GET_EXTENSION, "info.input.queryParams", {"town": "Paris"})
    _, findings = describe(_v2(extension))
    assert [(f.code, f.path) for f in findings] == [
        ("bazaar-info-schema-mismatch", "extensions.bazaar.info.input.queryParams")
    ]
    assert "'city' is a required property" in findings[0].message


# --- no network, bounded work ----------------------------------------------------------------


REMOTE = "http://127.0.0.1:9/x.json"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    "schema_edit",
    [
        ("schema.properties.input.$ref", REMOTE),
        ("schema.$id", "http://127.0.0.1:9/root.json"),
        ("schema.properties.input.properties.type.$ref", "other.json#/x"),
        ("schema.properties.input.properties.type.$dynamicRef", REMOTE),
    ],
)
def test_remote_references_are_findings_never_fetches(schema_edit: tuple[str, str]) -> None:
    _, findings = describe(_v2(_edit(GET_EXTENSION, *schema_edit)))
    assert _codes(findings) == ["bazaar-schema-external-ref"]


@pytest.mark.usefixtures("no_network")
def test_registry_refuses_retrieval_even_without_the_prescan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bazaar_schema, "external_references", lambda schema: [])
    schema = _edit(GET_EXTENSION["schema"], "properties.input.$ref", REMOTE)
    problems = validate_info(GET_EXTENSION["info"], schema, "extensions.bazaar")
    assert [code for code, _, _ in problems] == ["bazaar-schema-external-ref"]


def test_recursive_reference_is_a_finding() -> None:
    schema = {
        "$ref": "#",
        "required": ["input"],
        "properties": {"input": {"properties": {"type": {}}}},
    }
    extension = _edit(GET_EXTENSION, "schema", schema)
    assert "bazaar-schema-invalid" in _codes(describe(_v2(extension))[1])


def test_exponential_reference_fan_out_is_cut_off() -> None:
    defs: dict[str, Any] = {"d0": {"type": "object"}}
    for level in range(1, 30):
        ref = {"$ref": f"#/$defs/d{level - 1}"}
        defs[f"d{level}"] = {"allOf": [ref, ref]}
    schema = copy.deepcopy(GET_EXTENSION["schema"])
    schema["$defs"] = defs
    schema["properties"]["output"] = {"$ref": "#/$defs/d29"}
    _, findings = describe(_v2(_edit(GET_EXTENSION, "schema", schema)))
    assert _codes(findings) == ["bazaar-schema-invalid"]


def test_catastrophic_pattern_is_not_run() -> None:
    schema = _edit(GET_EXTENSION["schema"], "properties.input.properties.method.pattern", "^(a+)+$")
    info = _edit(GET_EXTENSION["info"], "input.method", "GET")
    assert validate_info(info, schema, "b") == []
    assert not safe_pattern("^(a+)+$")
    assert not safe_pattern("^(a|aa)*$")
    assert not safe_pattern("(x)\\1")
    assert safe_pattern("^[A-Z]+$")
    assert safe_pattern("^(ab)+$")


def test_oversized_and_too_deep_documents_are_not_validated() -> None:
    big = _edit(GET_EXTENSION, "info.output.example", {"items": list(range(MAX_NODES))})
    assert _codes(describe(_v2(big))[1]) == ["bazaar-too-large"]
    deep: Any = {}
    for _ in range(40):
        deep = {"properties": {"a": deep}}
    assert _codes(describe(_v2(_edit(GET_EXTENSION, "schema.$defs", deep)))[1]) == [
        "bazaar-too-large"
    ]


def test_self_referencing_mapping_terminates() -> None:
    info: dict[str, Any] = copy.deepcopy(GET_EXTENSION["info"])
    info["input"]["queryParams"]["self"] = info
    description, findings = describe(_v2({**GET_EXTENSION, "info": info}))
    assert description is not None
    assert _codes(findings) == ["bazaar-too-large"]


# --- routeTemplate and iconUrl tables --------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "valid"),
    [
        ("/users/:userId", True),
        ("/weather/:country/:city", True),
        ("/a-b_c.d~e/%20x", True),
        ("/", False),
        ("", False),
        (None, False),
        (17, False),
        ("users/:id", False),
        ("/users/{id}", False),
        ("/users/:id?x=1", False),
        ("/a/../b", False),
        ("/a/%2e%2e/b", False),
        ("/a/%252e%252e/b", False),
        ("/http%3A%2F%2Fevil", False),
        ("/a\n", False),
        ("/a" + "%" + "25" * 3 + "2e", True),  # encoded 4 times: decodes within 5 passes
        ("/a" + "%" + "25" * 6 + "2e", False),  # still changing after 5 passes
    ],
)
def test_route_template_rules(template: Any, valid: bool) -> None:
    assert (route_template_problem(template) is None) is valid


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://cdn.example.com/icon.png", True),
        ("http://example.com/i.png", True),
        ("ftp://example.com/i.png", False),
        ("/i.png", False),
        ("https://user:pw@example.com/i.png", False),
        ("https://localhost/i.png", False),
        ("https://ＬＯＣＡＬＨＯＳＴ/i.png", False),
        ("https://a.localhost/i.png", False),
        ("https://10.0.0.1/i.png", False),
        ("https://[::1]/i.png", False),
        ("https://2130706433/i.png", False),
        ("https://0x7f000001/i.png", False),
        ("https://example.com/" + "a" * 2048, False),
        ("https://exa\tmple.com/", False),
    ],
)
def test_icon_url_rules(url: str, valid: bool) -> None:
    _, findings = describe(_v2(GET_EXTENSION, iconUrl=url))
    assert ("bazaar-icon-url-invalid" not in _codes(findings)) is valid


# --- registry ----------------------------------------------------------------------------------


def test_registry_never_blocks_payability_and_does_not_clash() -> None:
    assert all(rule.severity is not Severity.ERROR for rule in BAZAAR_CODES.values())
    assert not set(BAZAAR_CODES) & set(CODES)
    assert all(code.startswith("bazaar-") for code in BAZAAR_CODES)


def test_every_code_except_the_safety_net_is_exercised() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    missing = [
        code
        for code in BAZAAR_CODES
        if f'"{code}"' not in source.replace('"bazaar-unreadable"', "")
    ]
    assert missing == ["bazaar-unreadable"]


# --- junk never raises -----------------------------------------------------------------------


def _check(document: Any) -> None:
    description, findings = describe(document)
    assert "bazaar-unreadable" not in _codes(findings), findings
    assert description is None or isinstance(description, ApiDescription)
    for item in findings:
        assert item.code in BAZAAR_CODES
        assert item.severity is BAZAAR_CODES[item.code].severity
    if description is not None:
        sample = sample_from_description(description)
        assert all(isinstance(v, str) for v in sample.query.values())
        json.dumps(sample.body)


def test_random_junk_never_raises() -> None:
    rng = random.Random(402)
    atoms: list[Any] = [None, True, 0, 7, -1.5, "", "x", "POST", "GET", "http", "mcp", "/a", "#"]
    keys = [
        "x402Version", "accepts", "outputSchema", "input", "output", "type", "method", "extensions",
        "bazaar", "info", "schema", "routeTemplate", "toolName", "tool", "inputSchema", "body",
        "bodyType", "queryParams", "query_params", "bodyFields", "properties", "required", "$ref",
        "$id", "$schema", "resource", "serviceName", "tags", "iconUrl", "discoverable", "enum",
    ]  # fmt: skip

    def junk(depth: int) -> Any:
        if depth > 5 or rng.random() < 0.25:
            return rng.choice(atoms)
        if rng.random() < 0.25:
            return [junk(depth + 1) for _ in range(rng.randrange(4))]
        node = {rng.choice(keys): junk(depth + 1) for _ in range(rng.randrange(6))}
        if depth == 0 and rng.random() < 0.5:
            node["x402Version"] = rng.choice([1, 2, "2", None])
        return node

    for _ in range(1500):
        _check(junk(0))
    for template in (GET_EXTENSION, POST_EXTENSION, MCP_EXTENSION):  # mutate valid documents too
        for _ in range(200):
            extension = copy.deepcopy(template)
            node: Any = extension
            while isinstance(node, dict) and node and rng.random() < 0.8:
                key = rng.choice(sorted(node))
                if not isinstance(node[key], dict) or rng.random() < 0.3:
                    node[key] = junk(3)
                    break
                node = node[key]
            _check(_v2(extension))


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev extra
    pass
else:
    _scalars = (
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    )
    _keys = st.sampled_from(
        [
            "x402Version",
            "accepts",
            "outputSchema",
            "input",
            "extensions",
            "bazaar",
            "info",
            "schema",
            "type",
            "method",
            "body",
            "$ref",
            "routeTemplate",
        ]
    ) | st.text(max_size=4)
    _json = st.recursive(
        _scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5)
        ),
        max_leaves=30,
    )

    @settings(max_examples=200, deadline=None)
    @given(_json)
    def test_hypothesis_junk_never_raises(document: Any) -> None:
        _check(document)
        _check({"x402Version": 2, "extensions": {"bazaar": document}})
        _check({"x402Version": 1, "accepts": [{"outputSchema": document}]})
