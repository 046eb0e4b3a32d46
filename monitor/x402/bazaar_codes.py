"""Register the finding codes of the discovery metadata (Bazaar) checks: severity, meaning, fix."""

from __future__ import annotations

from monitor.models import Severity
from monitor.x402.codes import Rule

_W, _I = Severity.WARNING, Severity.INFO
_NOT_PAYMENT = " (discovery only: the offer stays payable)"

BAZAAR_CODES: dict[str, Rule] = {
    "bazaar-v1-not-indexable": Rule(
        _W,
        'v1 outputSchema.input lacks type "http" or an HTTP method, so CDP does not index it'
        + _NOT_PAYMENT,
        'set outputSchema.input to {"type": "http", "method": "GET", …}',
    ),
    "bazaar-v1-snake-case": Rule(
        _I,
        "v1 outputSchema.input uses snake_case keys (Python legacy middleware)",
        "prefer camelCase (queryParams, bodyType, bodyFields, headerFields)",
    ),
    "bazaar-not-discoverable": Rule(
        _I,
        "v1 outputSchema.input says discoverable: false, so catalogues skip the endpoint",
        "drop discoverable: false if the endpoint should be listed",
    ),
    "bazaar-v1-misplaced": Rule(
        _W,
        "v1 discovery metadata outside accepts[].outputSchema is ignored"
        " (CDP reads v1 discovery data only from accepts[].outputSchema)" + _NOT_PAYMENT,
        "move it to accepts[].outputSchema {input, output}, or switch to x402 v2",
    ),
    "bazaar-v1-metadata-in-v2": Rule(
        _I,
        "x402Version 2 document carries discovery metadata only in v1 accepts[].outputSchema",
        "publish it as extensions.bazaar {info, schema}",
    ),
    "bazaar-field-type": Rule(
        _W,
        "a discovery-metadata field has the wrong JSON type and is ignored" + _NOT_PAYMENT,
        "use the type the bazaar spec gives (objects for params and headers)",
    ),
    "bazaar-extension-invalid": Rule(
        _W,
        "extensions.bazaar is not an object" + _NOT_PAYMENT,
        "make it {info: {...}, schema: {...}}",
    ),
    "bazaar-info-missing": Rule(
        _W,
        "extensions.bazaar has no info object" + _NOT_PAYMENT,
        "add info: {input: {...}, output?: {...}}",
    ),
    "bazaar-schema-missing": Rule(
        _W,
        "extensions.bazaar has no schema object, so facilitators cannot validate info"
        + _NOT_PAYMENT,
        "add schema: a draft 2020-12 JSON Schema of info",
    ),
    "bazaar-input-invalid": Rule(
        _W,
        'bazaar info.input is missing or its type is not "http" or "mcp"' + _NOT_PAYMENT,
        'set info.input.type to "http" or "mcp"',
    ),
    "bazaar-method-invalid": Rule(
        _W,
        "bazaar info.input.method is missing or not one of GET HEAD DELETE POST PUT PATCH"
        + _NOT_PAYMENT,
        "set the upper-case HTTP method the endpoint answers with 402",
    ),
    "bazaar-body-type-invalid": Rule(
        _W,
        "bodyType is missing on a body method, unknown, or set on a method without body"
        + _NOT_PAYMENT,
        'use bodyType "json", "form-data" or "text" with POST, PUT or PATCH only',
    ),
    "bazaar-body-missing": Rule(
        _W,
        "bazaar info.input has a body method but no body" + _NOT_PAYMENT,
        "add body: a JSON Schema or an example of the request body",
    ),
    "bazaar-v2-snake-case": Rule(
        _W,
        "bazaar info.input uses snake_case keys; the v2 spec names are camelCase" + _NOT_PAYMENT,
        "rename to queryParams, bodyType, pathParams, toolName, inputSchema",
    ),
    "bazaar-mcp-tool-missing": Rule(
        _W,
        "MCP info.input has no toolName" + _NOT_PAYMENT,
        "add toolName: the MCP tool this payment unlocks",
    ),
    "bazaar-mcp-legacy-tool": Rule(
        _I, "MCP info.input names the tool with `tool`, not `toolName`", "rename tool to toolName"
    ),
    "bazaar-mcp-input-schema-missing": Rule(
        _W,
        "MCP info.input has no inputSchema object" + _NOT_PAYMENT,
        "add inputSchema: the tool's JSON Schema of arguments",
    ),
    "bazaar-mcp-transport-invalid": Rule(
        _W,
        'MCP info.input.transport is not "streamable-http" or "sse"' + _NOT_PAYMENT,
        'set transport to "streamable-http" or "sse", or omit it',
    ),
    "bazaar-output-invalid": Rule(
        _W,
        "bazaar info.output is not {type: string, format?: string, example?}" + _NOT_PAYMENT,
        'set info.output to {"type": "json", "example": {...}}',
    ),
    "bazaar-schema-describes-body": Rule(
        _W,
        "bazaar schema describes the request body instead of info; facilitators reject it"
        " with `(root).input: … is required`" + _NOT_PAYMENT,
        "make schema describe info: {type: object, required: [input], properties: {input:"
        " {properties: {type, method, body: <your body schema>}}}}",
    ),
    "bazaar-schema-incomplete": Rule(
        _W,
        "bazaar schema does not require input or does not constrain input.type and method"
        + _NOT_PAYMENT,
        "require input and give input.type a const and method an enum",
    ),
    "bazaar-info-schema-mismatch": Rule(
        _W,
        "bazaar info does not validate against its own schema; facilitators reject it"
        + _NOT_PAYMENT,
        "make info and schema agree",
    ),
    "bazaar-schema-external-ref": Rule(
        _W,
        "bazaar schema has a $ref/$id outside the document; facilitators refuse it and the"
        " monitor never fetches it" + _NOT_PAYMENT,
        "inline the definitions under $defs and refer to them with #/$defs/…",
    ),
    "bazaar-schema-dialect": Rule(
        _W,
        "bazaar schema.$schema is not JSON Schema draft 2020-12" + _NOT_PAYMENT,
        'set $schema to "https://json-schema.org/draft/2020-12/schema"',
    ),
    "bazaar-schema-invalid": Rule(
        _W,
        "bazaar schema is not a valid JSON Schema or expands without end" + _NOT_PAYMENT,
        "fix the schema (check it with a draft 2020-12 validator)",
    ),
    "bazaar-too-large": Rule(
        _W,
        "bazaar info or schema is too large or deep for the monitor to validate" + _NOT_PAYMENT,
        "keep discovery metadata small: describe fields, not whole documents",
    ),
    "bazaar-route-template-invalid": Rule(
        _W,
        "bazaar routeTemplate breaks the spec rules, so the catalogue ignores it" + _NOT_PAYMENT,
        'use a path such as "/users/:userId" (letters, digits, _ / : . - ~ %; no .. or ://)',
    ),
    "bazaar-service-name-invalid": Rule(
        _W,
        "serviceName is not 1 to 32 printable ASCII characters; catalogues drop it",
        "shorten serviceName to at most 32 ASCII characters",
    ),
    "bazaar-tags-invalid": Rule(
        _W,
        "tags is not an array of at most 5 strings of 1 to 32 ASCII characters",
        "keep at most 5 short ASCII tags",
    ),
    "bazaar-icon-url-invalid": Rule(
        _W,
        "iconUrl is not a public http(s) URL of at most 2048 characters; catalogues drop it",
        "use an https URL on a public host name (no IP address, no localhost)",
    ),
    "bazaar-unreadable": Rule(
        _W,
        "the monitor failed to read the discovery metadata (a monitor bug)",
        "report it to the monitor's maintainers",
    ),
}
