"""Reading and writing YAML configs safely.

Reading uses PyYAML's safe loader (plain data only: no tags that build Python objects, so a
config can never run code) with a slightly saner scalar table than PyYAML's YAML 1.1 one:

- ``1e-6``, ``1E5``, ``-3e-4``, ``.5e3`` are floats (YAML 1.1 needs a dot and a signed
  exponent, so PyYAML reads ``1e-6`` as the *string* "1e-6" -- a silent learning-rate bug);
- only ``true``/``false`` (any of true, True, TRUE) are booleans; ``yes``, ``no``, ``on``,
  ``off`` stay strings;
- ``1:30`` is a string (no base-60 numbers) and ``2020-01-01`` is a string (no dates), so a
  loaded config is always JSON-like data that hashes and round-trips;
- a key given twice in one mapping is an error instead of "last one wins".

Writing (:func:`dump_yaml`) keeps keys in insertion order, uses block style, writes floats
with ``repr`` (exact round trip) and quotes any string that a YAML reader could mistake for
another type. :func:`write_yaml_atomic` never leaves a half-written file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath
from typing import Any

import yaml

from dmlbench.errors import ConfigError
from dmlbench.fileio import write_text_atomic

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_MERGE = re.compile(r"^(?:<<)$")

_TAG = "tag:yaml.org,2002:"
_DIGITS = list("0123456789")


#: Most values (scalars, lists, mappings) that aliases may add to a document once expanded: far
#: above what anchors save in a real config, far below a nested-alias "billion laughs" document.
MAX_ALIAS_VALUES = 10_000
#: Deepest nesting of lists and mappings in a config (real ones nest fewer than 10 levels).
MAX_DEPTH = 64


class _ConfigLoader(yaml.SafeLoader):
    """Safe loader with the scalar table described in the module docstring. Refused before it is
    built: a document whose aliases (``*name``) add more than :data:`MAX_ALIAS_VALUES` values once
    expanded or refer to themselves, or that nests deeper than :data:`MAX_DEPTH` levels."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            sizes: dict[int, int] = {}
            added = _expanded_size(node, sizes, set()) - len(sizes)  # values written once each: len(sizes)
            if added > MAX_ALIAS_VALUES:
                raise yaml.MarkedYAMLError(
                    problem=f"its aliases (*name) expand to {_rough(added)} more values, over the "
                    f"{MAX_ALIAS_VALUES:,} a config may add by aliases; write the values out or nest fewer aliases",
                    problem_mark=node.start_mark,
                )
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            identity = (key_node.tag, key_node.value)
            if identity in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key_node.value!r} (first given on line "
                    f"{seen[identity].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[identity] = key_node
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int], depth: int = 0) -> int:
    """Values ``node`` stands for with every alias expanded (an alias is the same node object
    again, so each node's size is computed once: linear in the document, however large the
    expansion)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise yaml.MarkedYAMLError(
            problem="an alias (*name) refers to the value that contains it (a recursive config)",
            problem_mark=node.start_mark,
        )
    if isinstance(node, yaml.ScalarNode):
        sizes[key] = 1
        return 1
    if depth >= MAX_DEPTH:
        raise yaml.MarkedYAMLError(
            problem=f"lists and mappings nested more than {MAX_DEPTH} levels deep",
            problem_mark=node.start_mark,
        )
    open_nodes.add(key)
    children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
    sizes[key] = 1 + sum(_expanded_size(child, sizes, open_nodes, depth + 1) for child in children)
    open_nodes.discard(key)
    return sizes[key]


def _rough(count: int) -> str:
    return f"{count:,}" if count < 10**12 else f"about 10^{len(str(count)) - 1}"


_ConfigLoader.yaml_implicit_resolvers = {}
_ConfigLoader.add_implicit_resolver(_TAG + "bool", _BOOL, list("tTfF"))
_ConfigLoader.add_implicit_resolver(_TAG + "int", _INT, list("-+") + _DIGITS)
_ConfigLoader.add_implicit_resolver(_TAG + "float", _FLOAT, list("-+.") + _DIGITS)
_ConfigLoader.add_implicit_resolver(_TAG + "merge", _MERGE, ["<"])
_ConfigLoader.add_implicit_resolver(_TAG + "null", _NULL, ["~", "n", "N", ""])


class _ConfigDumper(yaml.SafeDumper):
    """Safe dumper that also quotes strings our loader would read as floats (e.g. "1e-6")."""

    def ignore_aliases(self, data: Any) -> bool:  # configs are trees: never write &anchors
        return True


# The dumper keeps PyYAML's YAML 1.1 table (so "yes", "1:30", "2020-01-01" get quoted for any
# reader) and adds our exponent floats.
_ConfigDumper.add_implicit_resolver(_TAG + "float", _FLOAT, list("-+.") + _DIGITS)
_ConfigDumper.add_representer(tuple, lambda dumper, data: dumper.represent_list(list(data)))
_ConfigDumper.add_multi_representer(PurePath, lambda dumper, data: dumper.represent_str(str(data)))


def _describe(error: yaml.YAMLError) -> tuple[str, str]:
    """(``line:col``, problem) of a PyYAML error."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "?:?"
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    if context and problem != context:
        problem = f"{problem} ({context})"
    return where, " ".join(problem.split())


def load_yaml_file(path: str | os.PathLike) -> dict:
    """Load one YAML config file as a dict (empty file -> ``{}``).

    Raises :class:`ConfigError` ("path:line:col: problem") for malformed YAML, and when the
    file is missing, unreadable, or its top level is not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: config file not found") from error
    except IsADirectoryError as error:
        raise ConfigError(f"{path}: is a folder, expected a .yaml file") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from error
    try:
        data = yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as error:
        where, problem = _describe(error)
        raise ConfigError(f"{path}:{where}: {problem}") from error
    except RecursionError:  # PyYAML's parser recurses per level, before the depth check
        raise ConfigError(f"{path}: lists and mappings nested more than {MAX_DEPTH} levels deep") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys to values, got a "
            f"{type(data).__name__} (e.g. write 'batch_size: 32', not '- 32')"
        )
    return data


def _keys_missing_colon_space(value: Any) -> list[str]:
    """Mapping keys that contain ':' -- the mark of ``{a:1}`` written without a space."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and ":" in key:
                found.append(key)
            found.extend(_keys_missing_colon_space(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_keys_missing_colon_space(item))
    return found


def parse_value(text: str, flag: str) -> Any:
    """Parse a command-line value as YAML (same scalar rules as the files).

    ``"{MLRCSplitManager: {}}"`` -> dict, ``"[test]"`` -> list, ``"null"`` -> None,
    ``"1e-6"`` -> float, ``"true"`` -> True, ``"64"`` -> int, plain words -> str.
    Raises :class:`ConfigError` naming ``flag`` when the text is not valid YAML.
    """
    expected = (
        "expected a YAML value such as 64, 1e-6, true, null, a_word, [a, b] or "
        "{ClassName: {key: value}} (a space after every colon)"
    )
    if not text.strip():
        raise ConfigError(f"{flag}: empty value; {expected}")
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        value = yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as error:
        _, problem = _describe(error)
        raise ConfigError(f"{flag}: cannot parse {shown!r}: {problem}; {expected}") from error
    except RecursionError:  # PyYAML's parser recurses per level, before the depth check
        raise ConfigError(f"{flag}: lists and mappings nested more than {MAX_DEPTH} levels deep") from None
    glued = _keys_missing_colon_space(value)
    if glued:
        raise ConfigError(
            f"{flag}: {glued[0]!r} in {shown!r} looks like 'key:value' without a space; write 'key: value'"
        )
    return value


def dump_yaml(obj: Any) -> str:
    """Serialize config data as block-style YAML, keys in insertion order."""
    return yaml.dump(
        obj,
        Dumper=_ConfigDumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )


def write_yaml_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as YAML to ``path`` so that readers see the old file or the new one, never
    a mix (serialized first, then :func:`dmlbench.fileio.write_text_atomic`)."""
    write_text_atomic(Path(path), dump_yaml(obj))  # a serialization error leaves the disk untouched
