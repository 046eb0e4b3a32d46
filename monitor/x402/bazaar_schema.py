"""Check a v2 bazaar extension's `schema`, its `routeTemplate` and the resource service metadata.

Helpers of `monitor.x402.bazaar`: each check returns `Problem`s (code, path, text) that
bazaar.py turns into findings of its registry. `info` is validated against `schema` with
jsonschema draft 2020-12 through a registry that retrieves nothing, so a seller's schema can never
make the monitor open a connection or a file. The work is bounded: node count and nesting of both
documents, reference expansions, and regex patterns that could backtrack exponentially are skipped.
Pure: stdlib + jsonschema.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from itertools import islice
from typing import Any
from urllib.parse import unquote, urlsplit

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from monitor.models import JsonValue
from monitor.untrusted import clean_line

Problem = tuple[str, str, str]
"""(finding code, JSON path, what is wrong) — bazaar.py adds severity and fix."""

MAX_NODES = 4000
"""Most objects, arrays and scalars validated per document; beyond this validation is skipped."""
MAX_DEPTH = 24
"""Deepest nesting validated: jsonschema recurses several frames per level."""
MAX_REF_EXPANSIONS = 2000
"""Most `$ref`/`$dynamicRef` evaluations per validation: stops exponential reference fan-out."""
MAX_PATTERN_LENGTH = 256
MAX_ERRORS = 20
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
REFERENCE_KEYS = ("$ref", "$dynamicRef", "$recursiveRef", "$id")

_ROUTE_TEMPLATE = re.compile(r"/[a-zA-Z0-9_/:.\-~%]+")
_ROUTE_DECODE_PASSES = 5
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_ALL_DIGITS = re.compile(r"[0-9]+")
_HEX_HOST = re.compile(r"0x[0-9a-f]+", re.IGNORECASE)
_QUANTIFIED_GROUP = re.compile(r"\)\s*(?:[*+]|\{[0-9]*,)")
_INNER_REPETITION = re.compile(r"[*+|]|\{[0-9]*,|\\[1-9]")


class _BudgetExceededError(Exception):
    """Too many reference expansions in one validation."""


_BUDGET: ContextVar[list[int]] = ContextVar("bazaar_ref_budget")


def _refuse(uri: str) -> Resource[Any]:
    # Never fetch: a seller's schema is untrusted and the monitor must not become an SSRF tool.
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs class


_REGISTRY: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]

_Keyword = Callable[[Any, Any, Any, Any], Iterator[ValidationError] | None]


def _budgeted(keyword: str) -> _Keyword:
    original: _Keyword = Draft202012Validator.VALIDATORS[keyword]

    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        budget = _BUDGET.get()
        budget[0] -= 1
        if budget[0] < 0:
            raise _BudgetExceededError
        return original(validator, value, instance, schema)

    return check


def safe_pattern(pattern: object) -> bool:
    """Return whether a regex may be run on untrusted strings without exponential backtracking.

    Conservative: long patterns, backreferences and repeated groups that themselves repeat or
    alternate (`(a+)+`, `(a|aa)*`) are refused; a refused pattern is simply not checked.
    """
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
        return False
    if re.search(r"\\[1-9]", pattern):
        return False
    for match in _QUANTIFIED_GROUP.finditer(pattern):
        if _INNER_REPETITION.search(pattern, 0, match.start()):
            return False
    return True


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Any:
    if not safe_pattern(pattern):
        return None
    return Draft202012Validator.VALIDATORS["pattern"](validator, pattern, instance, schema)


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
    if not isinstance(patterns, Mapping):
        return None
    kept = {key: value for key, value in patterns.items() if safe_pattern(key)}
    return Draft202012Validator.VALIDATORS["patternProperties"](validator, kept, instance, schema)


_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "$ref": _budgeted("$ref"),
        "$dynamicRef": _budgeted("$dynamicRef"),
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
    },
)


def measure(value: JsonValue) -> tuple[int, int]:
    """Return (node count, max depth), counting at most MAX_NODES + 1 nodes (cycles terminate)."""
    nodes, deepest = 0, 0
    stack: list[tuple[JsonValue, int]] = [(value, 1)]
    while stack and nodes <= MAX_NODES:
        node, depth = stack.pop()
        nodes += 1
        deepest = max(deepest, depth)
        if isinstance(node, Mapping):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return nodes, deepest


def _plain(value: JsonValue, *, drop_dialect: bool) -> JsonValue:
    """Copy into dicts/lists (jsonschema's `object` is `dict`); optionally drop every `$schema`.

    Dropping `$schema` keeps every subschema on the one bounded validator class: jsonschema
    switches to a stock validator class when a subschema names a known dialect.
    Callers measure first, so the recursion is bounded.
    """
    if isinstance(value, Mapping):
        return {
            str(key): _plain(item, drop_dialect=drop_dialect)
            for key, item in value.items()
            if not (drop_dialect and key == "$schema")
        }
    if isinstance(value, list):
        return [_plain(item, drop_dialect=drop_dialect) for item in value]
    return value


def external_references(schema: JsonValue) -> list[str]:
    """Return the `$ref`/`$id`-like values that are not same-document fragments (`#…`).

    The official SDK's facilitator rejects such schemas outright, so each one is a problem even
    though this monitor never fetches them. Walks at most MAX_NODES nodes.
    """
    found: list[str] = []
    stack: list[JsonValue] = [schema]
    seen = 0
    while stack and seen <= MAX_NODES:
        node = stack.pop()
        seen += 1
        if isinstance(node, Mapping):
            for key in REFERENCE_KEYS:
                target = node.get(key)
                if key in node and not (isinstance(target, str) and target.startswith("#")):
                    shown = target if isinstance(target, str) else type(target).__name__
                    found.append(f"{key}: {clean_line(shown, 100)}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _line(error: Exception, limit: int) -> str:
    """Return an exception's text (which may quote the seller's schema) as one bounded line."""
    return clean_line(str(error), limit)


def _dotted(base: str, parts: Iterator[Any] | Any) -> str:
    path = base
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate_info(
    info: Mapping[str, JsonValue], schema: Mapping[str, JsonValue], base: str
) -> list[Problem]:
    """Validate `info` against `schema` (draft 2020-12, nothing fetched); return the problems.

    `base` is the path of the extension (`extensions.bazaar`). Oversized or too deep documents,
    external references, a non-2020-12 `$schema`, a malformed schema, unresolvable references,
    runaway reference expansion and recursion each give one problem instead of an exception.
    """
    problems: list[Problem] = []
    for name, document in (("info", info), ("schema", schema)):
        nodes, depth = measure(document)
        if nodes > MAX_NODES or depth > MAX_DEPTH:
            limits = f"limit {MAX_NODES} values, depth {MAX_DEPTH}"
            problem = f"{name} is too large or deep to validate ({limits})"
            return [("bazaar-too-large", f"{base}.{name}", problem)]
    dialect = schema.get("$schema")
    if dialect is not None and (
        not isinstance(dialect, str) or dialect.rstrip("#") != DRAFT_2020_12
    ):
        problem = (
            f"schema.$schema is {str(dialect)[:100]!r}, not draft 2020-12; validated as 2020-12"
        )
        problems.append(("bazaar-schema-dialect", f"{base}.schema.$schema", problem))
    references = external_references(schema)
    if references:
        shown = ", ".join(references[:3])
        problem = f"schema has external references ({shown})"
        return [*problems, ("bazaar-schema-external-ref", f"{base}.schema", problem)]
    cleaned = _plain(schema, drop_dialect=True)
    instance = _plain(info, drop_dialect=False)
    token = _BUDGET.set([MAX_REF_EXPANSIONS])
    try:
        Draft202012Validator.check_schema(cleaned)
        errors = list(
            islice(_Validator(cleaned, registry=_REGISTRY).iter_errors(instance), MAX_ERRORS)
        )
    except SchemaError as exc:
        problem = f"schema is not a valid JSON Schema: {clean_line(exc.message, 200)}"
        return [*problems, ("bazaar-schema-invalid", _dotted(f"{base}.schema", exc.path), problem)]
    except Unresolvable as exc:
        problem = f"schema reference cannot be resolved without fetching it ({_line(exc, 120)})"
        return [*problems, ("bazaar-schema-external-ref", f"{base}.schema", problem)]
    except (_BudgetExceededError, RecursionError):
        problem = f"schema references expand without end (over {MAX_REF_EXPANSIONS} or recursive)"
        return [*problems, ("bazaar-schema-invalid", f"{base}.schema", problem)]
    finally:
        _BUDGET.reset(token)
    error = best_match(errors)
    if error is not None:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        problem = f"info does not match schema: {clean_line(error.message, 200)}{more}"
        path = _dotted(f"{base}.info", error.absolute_path)
        problems.append(("bazaar-info-schema-mismatch", path, problem))
    return problems


def route_template_problem(value: JsonValue) -> str | None:
    """Return why a `routeTemplate` breaks the bazaar rules, or None when it is valid.

    Rules: a non-empty string starting with `/`, only `[a-zA-Z0-9_/:.\\-~%]`, and neither `..`
    nor `://` once percent-decoded to a fixed point (at most 5 passes; still changing = invalid).
    """
    if not isinstance(value, str) or not value:
        return "routeTemplate must be a non-empty string"
    if not value.startswith("/"):
        return "routeTemplate must start with /"
    if not _ROUTE_TEMPLATE.fullmatch(value):
        return "routeTemplate may contain only letters, digits and _ / : . - ~ %"
    decoded = value
    for _ in range(_ROUTE_DECODE_PASSES):
        step = unquote(decoded)
        if step == decoded:
            break
        decoded = step
    else:
        return "routeTemplate is percent-encoded too many times"
    if ".." in decoded:
        return "routeTemplate contains .. (path traversal)"
    if "://" in decoded:
        return "routeTemplate contains :// (a URL, not a path)"
    return None


def _short_ascii(value: JsonValue) -> bool:
    return (
        isinstance(value, str) and 0 < len(value) <= 32 and bool(_PRINTABLE_ASCII.fullmatch(value))
    )


def icon_url_problem(value: JsonValue) -> str | None:
    """Return why an `iconUrl` is unsafe or malformed, or None when it is acceptable.

    Must be an absolute http(s) URL of at most 2048 characters, without control characters or
    userinfo, whose host (percent-decoded, NFKC-folded) is not an IP literal, a numeric or hex
    host, or a loopback name: facilitators fetch icons, so these would be SSRF vectors.
    """
    if not isinstance(value, str) or not value or len(value) > 2048:
        return "iconUrl must be a string of 1 to 2048 characters"
    if _CONTROL.search(value):
        return "iconUrl contains control characters"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return "iconUrl is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return "iconUrl must be an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "iconUrl must not contain user information"
    host = unicodedata.normalize("NFKC", unquote(host)).lower().rstrip(".")
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return "iconUrl points at localhost"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "iconUrl host is an IP address"
    if ":" in host or _ALL_DIGITS.fullmatch(host) or _HEX_HOST.fullmatch(host):
        return "iconUrl host is an encoded IP address"
    return None


def service_metadata_problems(holder: Mapping[str, JsonValue], base: str) -> list[Problem]:
    """Check `serviceName`, `tags` and `iconUrl` on a resource object (or catalogue item).

    Absent or null fields are fine; facilitators drop invalid ones silently, hence warnings.
    """
    prefix = f"{base}." if base else ""
    problems: list[Problem] = []
    name = holder.get("serviceName")
    if name is not None and not _short_ascii(name):
        problem = "serviceName must be 1 to 32 printable ASCII characters"
        problems.append(("bazaar-service-name-invalid", f"{prefix}serviceName", problem))
    tags = holder.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            problem = "tags must be an array of strings"
        elif len(tags) > 5:
            problem = f"tags lists {len(tags)} entries; at most 5 are kept"
        elif not all(_short_ascii(tag) for tag in tags):
            problem = "every tag must be 1 to 32 printable ASCII characters"
        else:
            problem = ""
        if problem:
            problems.append(("bazaar-tags-invalid", f"{prefix}tags", problem))
    icon = holder.get("iconUrl")
    reason = icon_url_problem(icon) if icon is not None else None
    if reason:
        problems.append(("bazaar-icon-url-invalid", f"{prefix}iconUrl", reason))
    return problems


def _declared_names(info: Mapping[str, JsonValue]) -> set[str]:
    """Return the field names info.input declares in its body or query parameters."""
    node = info.get("input")
    names: set[str] = set()
    for key in ("body", "queryParams", "inputSchema"):
        value = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(value, Mapping):
            properties = value.get("properties")
            names.update(str(n) for n in (properties if isinstance(properties, Mapping) else value))
    return names


def schema_problems(
    info: Mapping[str, JsonValue], schema: Mapping[str, JsonValue], base: str
) -> list[Problem]:
    """Check that `schema` describes `info` (bazaar spec §4.4), then validate info against it.

    A schema without `input` that names other fields is the common seller bug of describing the
    request body (x402-foundation/x402#2112, #2814): reported once, without validating.
    """
    problems: list[Problem] = []
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    required_names = {str(n) for n in required} if isinstance(required, list) else set()
    if "input" not in properties and "input" not in required_names:
        names = (set(map(str, properties)) | required_names) - {"output"}
        if names:
            shown = ", ".join(clean_line(name, 40) for name in sorted(names)[:5])
            also = " (the same fields as info.input)" if names & _declared_names(info) else ""
            problem = f"schema describes {shown}{also}, not info.input"
            # Validating would only repeat the same mistake as a mismatch.
            return [("bazaar-schema-describes-body", f"{base}.schema", problem)]
        problems.append(
            ("bazaar-schema-incomplete", f"{base}.schema", "schema does not define input")
        )
    else:
        missing = [] if "input" in required_names else ["required: [input]"]
        input_schema = properties.get("input")
        input_props = input_schema.get("properties") if isinstance(input_schema, Mapping) else None
        input_props = input_props if isinstance(input_props, Mapping) else {}
        node = info.get("input")
        if "type" not in input_props:
            missing.append("input.type")
        if isinstance(node, Mapping) and node.get("type") == "http" and "method" not in input_props:
            missing.append("input.method")
        if missing:
            problem = f"schema does not constrain {', '.join(missing)}"
            problems.append(("bazaar-schema-incomplete", f"{base}.schema", problem))
    return problems + validate_info(info, schema, base)
