"""Minimal request samples from input schemas: v1 (camel/snake case), v2 bazaar, JSON Schema."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.x402 import SampleRequest, parse_challenge, sample_request
from monitor.x402.bazaar import ApiDescription, describe
from monitor.x402.sampling import MAX_DEPTH, MAX_VALUES, sample_from_description

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
SEED_PAGE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "seed-detail-page.txt"

SEED_PROMPT = (
    "A young woman is sitting on a couch in a room filled with blooming dahlias. She is wearing a "
    "purple dress, and her hair is styled in an updo. She is smiling and looking up. The room has "
    "a white couch, a white chair, and a white table. There are also several vases of flowers in "
    "the room, including a vase of purple flowers on the table and a vase of white flowers on the "
    "floor. The walls are white, and there are several paintings on the walls."
)
SEED_SCHEMA: dict[str, Any] = {
    "bodyFields": {
        "enable_safety_checker": {"default": True, "example": True, "required": False,
                                  "type": "boolean"},
        "enhance_prompt_mode": {"default": "standard", "enum": ["standard", "fast"],
                                "required": False, "type": '"standard" | "fast"'},
        "image_size": {"default": {"height": 2048, "width": 2048},
                       "example": {"height": 2160, "width": 3840}, "required": False,
                       "type": 'ImageSize | "square_hd"'},
        "max_images": {"default": 1, "maximum": 6, "minimum": 1, "required": False,
                       "type": "integer"},
        "num_images": {"default": 1, "enum": ["1"], "required": False, "type": "integer"},
        "prompt": {"description": "The text prompt used to generate the image",
                   "example": SEED_PROMPT, "required": True, "type": "string"},
        "seed": {"required": False, "type": "integer"},
        "sync_mode": {"default": False, "required": False, "type": "boolean"},
    },
    "bodyType": "json",
    "method": "POST",
    "type": "http",
}  # fmt: skip
"""The Input Schema section of reference/seed-detail-page.txt (descriptions shortened)."""


def test_seed_page_schema_samples_only_the_required_prompt() -> None:
    sample = sample_request(SEED_SCHEMA)
    assert sample == SampleRequest(method="POST", query={}, body={"prompt": SEED_PROMPT})


@pytest.mark.skipif(not SEED_PAGE.exists(), reason="shared reference not available")
def test_seed_page_schema_as_published() -> None:
    text = SEED_PAGE.read_text(encoding="utf-8")
    published = re.search(r"Input Schema\s+(\{.*?\})\s+Output Schema", text, re.DOTALL)
    assert published is not None
    sample = sample_request(json.loads(published.group(1)))
    assert sample.method == "POST"
    assert sample.body == {"prompt": SEED_PROMPT}


def _fixture_input(name: str) -> Any:
    return parse_challenge({}, (FIXTURES / name).read_bytes()).input_schema


def test_v1_fixture_post_with_field_definitions() -> None:
    sample = sample_request(_fixture_input("11-v1-evm-real-truecast-post-bodyfields.json"))
    assert sample == SampleRequest(method="POST", query={}, body={"prompt": "test"})


def test_v1_fixture_snake_case_with_description_strings_and_nulls() -> None:
    sample = sample_request(_fixture_input("08-v1-evm-real-aeon-empty-payto-INVALID.json"))
    # query_params values are descriptions, not definitions: nothing is declared required
    assert sample == SampleRequest(method="GET", query={}, body=None)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (  # snake_case v1 (Python legacy middleware)
            {"type": "http", "method": "post", "body_type": "json",
             "body_fields": {"q": {"type": "string", "required": True},
                             "n": {"type": "integer", "required": False}}},
            SampleRequest("POST", {}, {"q": "test"}),
        ),
        (  # required query parameters on GET are stringified, optional ones dropped
            {"type": "http", "method": "GET",
             "queryParams": {"city": {"type": "string", "required": True, "example": "Paris"},
                             "days": {"type": "integer", "required": True, "minimum": 3},
                             "metric": {"type": "boolean", "required": True},
                             "tags": {"type": "array", "required": True, "default": ["a"]},
                             "lang": {"type": "string"}}},
            SampleRequest("GET", {"city": "Paris", "days": "3", "metric": "false",
                                  "tags": '["a"]'}, None),
        ),
        (  # snake_case query params
            {"method": "GET", "query_params": {"id": {"type": "string", "required": True}}},
            SampleRequest("GET", {"id": "test"}, None),
        ),
        (  # v2 bazaar info.input with a JSON Schema body
            {"type": "http", "method": "POST", "bodyType": "json",
             "body": {"type": "object", "required": ["text", "level"],
                      "properties": {"text": {"type": "string", "examples": ["hello"]},
                                     "level": {"type": "integer", "enum": [2, 3]},
                                     "extra": {"type": "string"}}}},
            SampleRequest("POST", {}, {"text": "hello", "level": 2}),
        ),
        (  # v2 bazaar info.input with an example body: sent as published
            {"type": "http", "method": "POST", "bodyType": "json",
             "body": {"city": "San Francisco", "units": "metric"}},
            SampleRequest("POST", {}, {"city": "San Francisco", "units": "metric"}),
        ),
        (  # v2 bazaar info.input with JSON Schema query params
            {"type": "http", "method": "GET",
             "queryParams": {"type": "object", "required": ["q"],
                             "properties": {"q": {"type": "string", "const": "btc"}}}},
            SampleRequest("GET", {"q": "btc"}, None),
        ),
        (  # bare JSON Schema: a body, method undeclared
            {"type": "object", "required": ["a"],
             "properties": {"a": {"type": "number", "minimum": 0.5}, "b": {"type": "string"}}},
            SampleRequest(None, {}, {"a": 0.5}),
        ),
        (  # nested required objects are sampled recursively
            {"method": "PUT",
             "bodyFields": {"user": {"type": "object", "required": True,
                                     "properties": {"name": {"type": "string"},
                                                    "age": {"type": "integer"}},
                                     "required_fields": [], "example": None}}},
            SampleRequest("PUT", {}, {"user": {}}),
        ),
        (
            {"method": "PATCH",
             "bodyFields": {"user": {"type": "object", "required": True,
                                     "properties": {"name": {"type": ["string", "null"],
                                                             "required": True}}}}},
            SampleRequest("PATCH", {}, {"user": {"name": "test"}}),
        ),
        (  # whole v1 outputSchema and whole bazaar extension are unwrapped
            {"input": {"type": "http", "method": "DELETE"}, "output": {}},
            SampleRequest("DELETE", {}, None),
        ),
        (
            {"info": {"input": {"type": "http", "method": "POST"}}, "schema": {}},
            SampleRequest("POST", {}, {}),
        ),
        (  # body methods with nothing declared send {}
            {"type": "http", "method": "POST"},
            SampleRequest("POST", {}, {}),
        ),
        (  # body declared on GET is not sent
            {"method": "GET", "bodyFields": {"a": {"type": "string", "required": True}}},
            SampleRequest("GET", {}, None),
        ),
        (  # unknown method: undeclared, but the body is still sampled for a POST retry
            {"method": "FETCH", "bodyFields": {"a": {"type": "string", "required": True}}},
            SampleRequest(None, {}, {"a": "test"}),
        ),
        (  # a list of named field definitions
            {"method": "POST", "bodyFields": [{"name": "a", "type": "boolean", "required": True},
                                              {"name": "b", "type": "string"}]},
            SampleRequest("POST", {}, {"a": False}),
        ),
    ],
)  # fmt: skip
def test_schema_shapes(schema: dict[str, Any], expected: SampleRequest) -> None:
    assert sample_request(schema) == expected


@pytest.mark.parametrize(
    ("definition", "value"),
    [
        ({"type": "string", "default": "d", "const": "c", "enum": ["e"], "example": "x"}, "d"),
        ({"type": "string", "const": "c", "enum": ["e"], "example": "x"}, "c"),
        ({"type": "string", "enum": ["e", "f"], "example": "x"}, "e"),
        ({"type": "string", "example": "x", "examples": ["y"]}, "x"),
        ({"type": "string", "examples": ["y", "z"]}, "y"),
        ({"type": "string", "default": None, "example": "x"}, "x"),
        ({"type": "string"}, "test"),
        ({"type": "string", "format": "email"}, "test@example.com"),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z"),
        ({"type": "string", "minLength": 6}, "testxx"),
        ({"type": "integer"}, 1),
        ({"type": "integer", "minimum": 10}, 10),
        ({"type": "integer", "minimum": 2.5}, 1),
        ({"type": "integer", "minimum": True}, 1),
        ({"type": "number"}, 1),
        ({"type": "number", "minimum": -2.5}, -2.5),
        ({"type": "boolean"}, False),
        ({"type": "array"}, []),
        ({"type": "object"}, {}),
        ({"type": "null"}, None),
        ({"type": ["null", "integer"]}, 1),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 1),
        ({"type": '"standard" | "fast"'}, "test"),
        ({}, "test"),
    ],
)
def test_value_precedence_and_placeholders(definition: dict[str, Any], value: Any) -> None:
    sample = sample_request(
        {"method": "POST", "bodyFields": {"f": {**definition, "required": True}}}
    )
    assert sample.body == {"f": value}


def test_recursion_is_bounded() -> None:
    node: dict[str, Any] = {"type": "object", "required": ["child"], "properties": {}}
    root = node
    for _ in range(50):
        child: dict[str, Any] = {"type": "object", "required": ["child"], "properties": {}}
        node["properties"]["child"] = child
        node = child
    body = sample_request(root).body
    depth = 0
    while isinstance(body, dict) and body:
        body = body["child"]
        depth += 1
    assert depth == MAX_DEPTH


def test_self_referencing_schema_terminates() -> None:
    node: dict[str, Any] = {"type": "object", "required": ["me"], "properties": {}}
    node["properties"]["me"] = node
    assert isinstance(sample_request(node).body, dict)


def _count_values(node: Any) -> int:
    if isinstance(node, dict):
        return len(node) + sum(_count_values(value) for value in node.values())
    return 0


def test_aliased_schema_is_sampled_within_the_value_budget() -> None:
    # YAML aliases can make a config schema a DAG: 10 fields x 8 levels would be 10**8 values.
    node: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_DEPTH):
        names = [f"f{i}" for i in range(10)]
        node = {"type": "object", "required": names, "properties": dict.fromkeys(names, node)}
    body = sample_request(node).body
    assert 0 < _count_values(body) <= MAX_VALUES


@pytest.mark.parametrize(
    "junk",
    [
        None,
        {},
        {"method": 5},
        {"method": None, "bodyFields": "text"},
        {"method": "POST", "bodyFields": [1, None, {"name": 3}]},
        {"method": "GET", "queryParams": {"a": {"required": True, "type": {"x": 1}}}},
        {"method": "GET", "queryParams": [{"name": "a", "required": True}]},
        {"method": "POST", "body": ["not", "an", "object"]},
        {"type": "object", "required": "a", "properties": []},
        {"type": "object", "required": [1, None, "a"], "properties": {"a": 7}},
        {"input": "GET"},
        {"info": {"input": None}},
        {"properties": {"type": {"type": "string"}}, "required": ["type"]},
    ],
)
def test_junk_never_raises(junk: Any) -> None:
    sample = sample_request(junk)
    assert isinstance(sample, SampleRequest)
    assert sample.method in {None, "GET", "POST"}
    assert all(isinstance(v, str) for v in sample.query.values())


def test_random_junk_never_raises() -> None:
    rng = random.Random(402)
    atoms: list[Any] = [None, True, 0, 7, -1.5, "", "x", "POST", "GET", "object", "string"]
    keys = [
        "method",
        "type",
        "required",
        "properties",
        "bodyFields",
        "body_fields",
        "body",
        "queryParams",
        "query_params",
        "example",
        "enum",
        "default",
        "input",
        "info",
        "a",
    ]

    def junk(depth: int) -> Any:
        if depth > 4 or rng.random() < 0.3:
            return rng.choice(atoms)
        if rng.random() < 0.3:
            return [junk(depth + 1) for _ in range(rng.randrange(4))]
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randrange(5))}

    for _ in range(500):
        sample = sample_request(junk(0))
        assert isinstance(sample, SampleRequest)
        assert all(isinstance(v, str) for v in sample.query.values())
        json.dumps(sample.body)  # the body must stay JSON-serialisable


def _description(**fields: Any) -> ApiDescription:
    base: dict[str, Any] = {
        "kind": "http", "method": "POST", "body_type": "json", "query_params": None,
        "body": None, "headers": None, "path_params": None, "route_template": None,
        "tool_name": None, "tool_input_schema": None, "output": None, "discoverable": True,
        "source": "v2-bazaar",
    }  # fmt: skip
    return ApiDescription(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"body": {"a": "b"}, "body_kind": "example"}, SampleRequest("POST", {}, {"a": "b"})),
        ({"body": "raw text", "body_kind": "example"}, SampleRequest("POST", {}, "raw text")),
        ({"body": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
          "body_kind": "schema"}, SampleRequest("POST", {}, {"n": 1})),
        ({"body": {"a": {"type": "string", "required": True}, "b": {}}, "body_kind": "fields"},
         SampleRequest("POST", {}, {"a": "test"})),
        ({"body": None}, SampleRequest("POST", {}, {})),
        ({"method": "GET", "body": {"a": 1}, "body_kind": "example"},
         SampleRequest("GET", {}, None)),
        # v2 queryParams are example values (sent); v1 ones are descriptions (only required sent)
        ({"method": "GET", "query_params": {"city": "Paris", "n": 2}},
         SampleRequest("GET", {"city": "Paris", "n": "2"}, None)),
        ({"method": "GET", "query_params": {"city": "Paris"}, "source": "v1-outputSchema"},
         SampleRequest("GET", {}, None)),
        ({"method": None, "body": {"a": 1}, "body_kind": "example"},
         SampleRequest(None, {}, {"a": 1})),
        ({"kind": "mcp", "method": None, "tool_name": "t", "tool_input_schema": None},
         SampleRequest("POST", {}, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                    "params": {"name": "t", "arguments": {}}})),
    ],
)  # fmt: skip
def test_sample_from_description(fields: dict[str, Any], expected: SampleRequest) -> None:
    description = _description(**fields)
    assert sample_from_description(description) == expected
    assert sample_request(description) == expected


@pytest.mark.parametrize(
    "name",
    [
        "08-v1-evm-real-aeon-empty-payto-INVALID.json",
        "11-v1-evm-real-truecast-post-bodyfields.json",
        "05-discovery-item-cdp-docs-mixed-v1-v2.json",
    ],
)
def test_description_and_raw_input_sample_alike_for_v1_fixtures(name: str) -> None:
    document = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    description, _ = describe(document)
    assert description is not None
    raw = document["accepts"][0]["outputSchema"]["input"]
    assert sample_request(description) == sample_request(raw)


def test_junk_description_never_raises() -> None:
    junk = _description(method=7, query_params=[1], body={"x": object()}, body_kind="fields")
    assert isinstance(sample_request(junk), SampleRequest)
