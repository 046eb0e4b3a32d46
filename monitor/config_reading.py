"""Read config text into checked input: safe YAML, `${VAR}` substitution, key-path messages.

Core module, independent of what the config holds (config.py owns the models):
- `read_yaml` loads YAML safely and refuses a key repeated within one mapping, naming its key
  path and both lines (YAML itself would silently keep the last one);
- `substitute_environment` replaces `${VAR}`; text with a reference becomes `Substituted`,
  whose repr shows the template, so no error message ever shows a variable's value;
- `typed` reads substituted text as the whole number or true/false its key takes (found from
  the models' annotations), as YAML reads them unquoted: types stay strict otherwise;
- `describe` turns one pydantic error into `key.path[2].name: what is wrong`.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from monitor.models import ConfigError

_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_WHOLE_NUMBER = re.compile(r"[-+]?[0-9]+")
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


def read_yaml(text: str, source: str) -> object:
    """Decode YAML text safely; errors (and repeated keys) name `source`, the line and the key."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader: no arbitrary objects
    except _RepeatedKeys as error:
        raise ConfigError(
            [
                f"{source}: line {line}: {key_path}: duplicate key, first on line {first_line} "
                "(YAML keeps only the last one: merge them)"
                for key_path, line, first_line in error.repeats
            ]
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError([f"{source}:{where}: {problem}"]) from None


class _RepeatedKeys(yaml.YAMLError):
    def __init__(self, repeats: list[tuple[str, int, int]]) -> None:
        super().__init__(f"{len(repeats)} repeated keys")
        self.repeats = repeats
        """(key path, line, line of the first occurrence) of each repeated key."""


class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML loading that refuses a key repeated within one mapping.

    The check walks the composed node tree before construction: only there are the key paths
    known (a mapping's constructor does not see its parents) and merge keys (`<<: *anchor`)
    not yet flattened, so a key that overrides a merged one is not taken for a repeat.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        repeats = list(self._repeated_keys(node, "", set()))
        if repeats:
            raise _RepeatedKeys(repeats)
        return super().construct_document(node)

    def _repeated_keys(
        self, node: yaml.Node, path: str, seen: set[int]
    ) -> Iterator[tuple[str, int, int]]:
        if id(node) in seen:  # an alias (or a recursive structure): checked where defined
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                yield from self._repeated_keys(item, f"{path}[{index}]", seen)
        if not isinstance(node, yaml.MappingNode):
            return
        first_lines: dict[object, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                yield from self._repeated_keys(value_node, path, seen)
                continue
            key = self.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            key_path = _join(path, str(key))
            line = key_node.start_mark.line + 1
            if key is not None and key in first_lines:
                yield key_path, line, first_lines[key]
            elif key is not None:
                first_lines[key] = line
            yield from self._repeated_keys(value_node, key_path, seen)


class Substituted(str):
    """Text in which `${VAR}` references were replaced; its repr shows the template only.

    Validation messages quote values with repr, so a variable's value (often a secret) never
    reaches an error message. `unresolved` marks text that still holds an unset variable.
    """

    template: str
    unresolved: bool

    def __new__(cls, value: str, template: str, *, unresolved: bool = False) -> Substituted:
        text = super().__new__(cls, value)
        text.template = template
        text.unresolved = unresolved
        return text

    def __repr__(self) -> str:
        return f"{self.template!r} after substitution"


def substitute_environment(
    node: Any, environ: Mapping[str, str], path: str = "", *, keep_unset_below: str | None = None
) -> Any:
    """Replace `${VAR}` (and `${VAR:-default}`) in every string of a YAML tree.

    `$$` stands for a literal `$`. A variable that is unset and has no default raises
    ConfigError naming the key path, so a secret never silently becomes an empty string;
    below the key path `keep_unset_below` it stays as written, marked unresolved. Text with a
    reference becomes `Substituted`, whose repr never shows the value.
    """
    if isinstance(node, dict):
        return {
            key: substitute_environment(
                value, environ, _join(path, str(key)), keep_unset_below=keep_unset_below
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            substitute_environment(
                value, environ, f"{path}[{index}]", keep_unset_below=keep_unset_below
            )
            for index, value in enumerate(node)
        ]
    if not isinstance(node, str):
        return node
    keep_unset = keep_unset_below is not None and _is_below(path, keep_unset_below)
    references = 0
    unresolved = False

    def replace(match: re.Match[str]) -> str:
        nonlocal references, unresolved
        if match.group(0) == "$$":
            return "$"
        references += 1
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        if keep_unset:
            unresolved = True
            return match.group(0)
        raise ConfigError(
            [
                f"{path or '(root)'}: environment variable {name} is not set (export it, "
                f"or write ${{{name}:-default}})"
            ]
        )

    text = _ENV_REFERENCE.sub(replace, node)
    return Substituted(text, node, unresolved=unresolved) if references else text


def typed(node: Any, annotation: Any) -> Any:
    """Give substituted text the type its key takes, following the models' annotations.

    Whole numbers and true/false are read as YAML reads them unquoted; text that does not
    spell one stays text, for strict validation to refuse. Free-form JSON (bodies, schemas)
    gets plain text. Subtrees without substituted text are returned as they are.
    """
    if isinstance(node, Substituted):
        kinds = _members(annotation)
        if int in kinds and _WHOLE_NUMBER.fullmatch(node):
            return int(node)
        if bool in kinds and node in _TRUE | _FALSE:
            return node in _TRUE
        return str(node) if Any in kinds else node
    if not _has_substituted(node):
        return node
    kinds = _members(annotation)
    if isinstance(node, dict):
        model = next((kind for kind in kinds if _is_model(kind)), None)
        if model is not None:
            fields = model.model_fields
            return {
                key: typed(value, fields[key].annotation) if key in fields else value
                for key, value in node.items()
            }
        values = next((get_args(kind)[1] for kind in kinds if get_origin(kind) is dict), Any)
        return {key: typed(value, values) for key, value in node.items()}
    items = next((get_args(kind)[0] for kind in kinds if get_origin(kind) in (tuple, list)), Any)
    return [typed(value, items) for value in node]


def _has_substituted(node: Any) -> bool:
    if isinstance(node, Substituted):
        return True
    if isinstance(node, dict):
        return any(_has_substituted(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_substituted(value) for value in node)
    return False


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _is_below(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def is_unresolved(error: Mapping[str, Any]) -> bool:
    """Return whether a pydantic error is about text that still holds an unset variable."""
    value = error.get("input")
    return isinstance(value, Substituted) and value.unresolved


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(error: Mapping[str, Any]) -> str:
    """Turn one pydantic error into `key.path[2].name: what is wrong (and how to fix it)`."""
    path = ""
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"function-after", "function-before"} or str(part).startswith("literal"):
            continue
        else:
            path = _join(path, str(part))
    kind = error["type"]
    got = _show(error.get("input"))
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = "unknown key (check its spelling against the README's config reference)"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in {"int_type", "int_parsing", "int_from_float"}:
        message = f"expected an integer, got {got}"
    elif kind in {"bool_type", "bool_parsing"}:
        message = f"expected true or false, got {got}"
    elif kind == "string_type":
        # A YAML number or boolean (bool is an int) where text is wanted: quotes make it text.
        quote_it = isinstance(error.get("input"), int | float)
        message = f"expected text, got {got}" + (" (quote it)" if quote_it else "")
    elif kind in {"model_type", "model_attributes_type", "dict_type"}:
        message = f"expected a mapping of keys, got {got}"
    elif kind in {"tuple_type", "list_type"}:
        message = f"expected a list, got {got}"
    elif kind == "datetime_type":
        message = f"expected a date and time such as 2026-12-01T02:00:00Z, got {got}"
    message = message[:1].lower() + message[1:]
    return f"{path or '(root)'}: {message}"


def _show(value: object) -> str:
    """Show a YAML value as the user wrote it: `true`, `null`, `8.0`, `'8'`, `a mapping`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value)  # a Substituted value shows its template, never the value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date):
        return value.isoformat()
    return type(value).__name__


def referenced_variables(text: str) -> set[str]:
    """Return the names of the environment variables `text` refers to with `${VAR}`."""
    return {match.group(1) for match in _ENV_REFERENCE.finditer(text) if match.group(1)}
