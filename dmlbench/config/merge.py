"""Merging configs, with powerful-benchmarker 0.9's special key suffixes.

``merge_configs(base, override)`` merges ``override`` into a copy of ``base``. Without
suffixes, mappings merge recursively: a key only in ``override`` is added, a leaf in
``override`` wins, and lists are replaced (never concatenated)::

    base:     {optimizers: {trunk_optimizer: {RMSprop: {lr: 1.0e-06}}}}
    override: {optimizers: {trunk_optimizer: {RMSprop: {lr: 0.01, alpha: 0.95}}}}
    result:   {optimizers: {trunk_optimizer: {RMSprop: {lr: 0.01, alpha: 0.95}}}}

A suffix at the end of a key changes what happens to that key. Suffixes work in YAML files
and on the command line (``--key~SUFFIX~ value``), at any depth. "Depth N below a key" counts
the mapping that is the key's value as depth 1, the mappings inside it as depth 2, and so on.

``~OVERRIDE~`` -- replace the value instead of merging into it::

    base:     {optimizers: {trunk_optimizer: {RMSprop: {lr: 1.0e-06}}}}
    override: {optimizers: {trunk_optimizer~OVERRIDE~: {Adam: {lr: 0.01}}}}
    result:   {optimizers: {trunk_optimizer: {Adam: {lr: 0.01}}}}

``~APPLY~N`` -- set each key of the value in every mapping at depth N below the key (here:
set lr in all optimizers, whatever their class)::

    base:     {optimizers: {trunk_optimizer: {RMSprop: {lr: 1.0e-06}},
                            embedder_optimizer: {Adam: {lr: 0.01}}}}
    override: {optimizers~APPLY~3: {lr: 0.005}}
    result:   {optimizers: {trunk_optimizer: {RMSprop: {lr: 0.005}},
                            embedder_optimizer: {Adam: {lr: 0.005}}}}

  As in powerful-benchmarker, the keys are *set*, one level deep: a mapping in the value replaces
  the mapping of the same key rather than merging into it (``{w: {b: 3}}`` applied to
  ``{w: {a: 1, b: 2}}`` gives ``{w: {b: 3}}``), and the suffixes of the value's own keys
  (``~OVERRIDE~``, ``~DELETE~``, ...) act as usual. A value that is not a mapping, standing where a
  mapping at depth N would be (``{RMSprop: null}``, ``{RMSprop: 3}``), is replaced by the applied
  value. Unlike powerful-benchmarker, which ignored it, an ``~APPLY~N`` that reaches nothing is a
  ConfigError.

``~SWAP~N`` -- rename keys of the mappings at depth N below the key, keeping their values.
``{New: {}}`` (or ``{New: null}``) renames the *only* key there; ``{Old: New}`` renames a
named key (needed when there are several); ``{New: {k: v}}`` renames the only key and merges
``{k: v}`` into its value (a dmlbench extension)::

    base:     {split_manager: {ClassDisjointSplitManager: {test_size: 0.5, num_training_partitions: 4}}}
    override: {split_manager~SWAP~1: {MLRCSplitManager: {}}}
    result:   {split_manager: {MLRCSplitManager: {test_size: 0.5, num_training_partitions: 4}}}

    base:     {transforms: {train: {Resize: {size: 256}, RandomHorizontalFlip: {p: 0.5}}}}
    override: {transforms~SWAP~2: {RandomHorizontalFlip: RandomVerticalFlip}}
    result:   {transforms: {train: {Resize: {size: 256}, RandomVerticalFlip: {p: 0.5}}}}

  powerful-benchmarker asserted when ``{New: {}}`` met several keys; here that is a
  ConfigError listing the keys and asking for the ``{Old: New}`` form. The renamed key keeps
  its place (powerful-benchmarker moved it to the end of its mapping, reordering transforms);
  an ``{Old: New}`` that finds neither name, or whose ``New`` is already there (which
  powerful-benchmarker overwrote), is a ConfigError.

``~DELETE~`` and its synonym ``~REMOVE~`` -- delete the key; the value is ignored. As in
powerful-benchmarker, deleting a key that is not there does nothing (so re-applying an
override is harmless). ``~REMOVE~`` is a dmlbench addition, and so is the marker as the *value*::

    base:     {optimizers: {trunk_optimizer: {...}, embedder_optimizer: {...}}}
    override: {optimizers: {embedder_optimizer~DELETE~: {}}}     # PB form
    override: {optimizers: {embedder_optimizer~REMOVE~: null}}   # synonym
    override: {optimizers: {embedder_optimizer: ~DELETE~}}       # value form
    result:   {optimizers: {trunk_optimizer: {...}}}

Search-space suffixes ``~BAYESIAN~``, ``~LOG_BAYESIAN~``, ``~INT_BAYESIAN~``, ``~CHOICE~``
(see :mod:`dmlbench.search.space`) are kept in the result as ordinary keys; a search
key replaces a plain key of the same base name and vice versa, so the later one wins
(powerful-benchmarker kept both keys, and the search range won whatever the order;
``~CHOICE~`` is a dmlbench addition)::

    base:     {MultiSimilarityLoss: {alpha: 2, beta: 50}}
    override: {MultiSimilarityLoss: {alpha~LOG_BAYESIAN~: [0.01, 100]}}
    result:   {MultiSimilarityLoss: {alpha~LOG_BAYESIAN~: [0.01, 100], beta: 50}}

Any other ``~WORD~`` suffix, or a second suffix on one key, is a ConfigError naming the key
path and listing these (powerful-benchmarker kept such keys literally). Suffixes are resolved
everywhere, also inside a new subtree, a list item or the first file of a list, where
powerful-benchmarker left them in the result as literal keys.

:func:`combine_overrides` folds two overrides into one whose effect equals applying them in
turn (used to combine several command-line flags).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Hashable
from typing import Any

from dmlbench.config.keys import SEARCH_SUFFIXES, dotted, effective_spec
from dmlbench.errors import ConfigError

# --------------------------------------------------------------------------------------------
# merge_configs


def merge_configs(base: dict, override: dict) -> dict:
    """Merge ``override`` into a copy of ``base`` (inputs are left untouched).

    Suffixed keys of ``override`` are applied to ``base`` as described in the module
    docstring. The result has no suffixes except the search-space ones.
    """
    for name, value in (("base", base), ("override", override)):
        if not isinstance(value, dict):
            raise ConfigError(f"merge_configs: {name} must be a mapping, got {type(value).__name__}")
    result = _normalize(base, ())
    return _merge_into(result, override, ())


def _normalize(value: Any, path: tuple) -> Any:
    """A fresh copy of ``value`` with the suffixes of every mapping in it resolved."""
    if isinstance(value, dict):
        return _merge_into({}, value, path)
    if isinstance(value, list):
        return [_normalize(item, path + (index,)) for index, item in enumerate(value)]
    return copy.deepcopy(value)


def _search_variants(node: dict, name: Hashable) -> list[Hashable]:
    """Keys of ``node`` that are ``name`` with a search suffix."""
    if not isinstance(name, str):
        return []
    return [name + suffix for suffix in SEARCH_SUFFIXES if name + suffix in node]


def _put(node: dict, key: Hashable, value: Any, replaces: list[Hashable]) -> None:
    """Set ``node[key] = value``, removing the keys in ``replaces``; the new key takes the
    place of the first of ``key``/``replaces`` already present (else it goes last)."""
    doomed = [k for k in [key, *replaces] if k in node]
    if not doomed:
        node[key] = value
        return
    items = list(node.items())
    node.clear()
    for existing, existing_value in items:
        if existing == doomed[0]:
            node[key] = value
        elif existing not in doomed:
            node[existing] = existing_value


def _merge_into(result: dict, override: dict, path: tuple, deep: bool = True) -> dict:
    """Apply ``override`` to ``result`` (which this module owns and mutates); return it.
    With ``deep=False`` (``~APPLY~N``) a plain key replaces its mapping instead of merging."""
    for key, value in override.items():
        spec = effective_spec(key, value, path)
        name = spec.name
        here = path + (name,)
        if spec.kind == "delete":
            for doomed in [name, *_search_variants(result, name)]:
                result.pop(doomed, None)
        elif spec.kind == "plain" and deep:
            current = result.get(name)
            if name in result and isinstance(current, dict) and isinstance(value, dict):
                _merge_into(current, value, here)
            else:
                _put(result, name, _normalize(value, here), _search_variants(result, name))
        elif spec.kind in ("override", "plain"):
            _put(result, name, _normalize(value, here), _search_variants(result, name))
        elif spec.kind == "search":
            others = [k for k in _search_variants(result, name) if k != key]
            _put(result, key, copy.deepcopy(value), [name, *others])
        else:  # apply / swap
            if not isinstance(value, dict):
                raise ConfigError(
                    f"'{dotted(path, key)}': the value of {spec.suffix} must be a mapping, got {value!r}"
                )
            if name not in result:
                raise ConfigError(
                    f"'{dotted(path, key)}': there is no key '{dotted(here)}' to apply "
                    f"{spec.suffix} to{_nearest_hint(name, result)}"
                )
            if not isinstance(result[name], dict):
                raise ConfigError(
                    f"'{dotted(path, key)}': {spec.suffix} needs '{dotted(here)}' to be a "
                    f"mapping, it is {result[name]!r}"
                )
            if spec.kind == "apply":
                _apply_at_depth(result[name], value, spec.depth, here, key)
            else:
                _swap_at_depth(result[name], value, spec.depth, here, key)
    return result


def _nearest_hint(name: Hashable, node: dict) -> str:
    keys = [str(k) for k in node]
    close = difflib.get_close_matches(str(name), keys, n=3, cutoff=0.5)
    if close:
        return f" (did you mean {', '.join(close)}?)"
    return f" (keys there: {', '.join(keys)})" if keys else " (the mapping there is empty)"


def _visit_depth(
    node: dict,
    depth: int,
    path: tuple,
    on_mapping: Callable[[dict, tuple], None],
    on_leaf: Callable[[dict, Hashable, tuple], None] | None = None,
) -> int:
    """Call ``on_mapping`` for each mapping at ``depth`` (``node`` itself is depth 1) and
    ``on_leaf`` for each other value standing where such a mapping would be; return how many."""
    if depth == 1:
        on_mapping(node, path)
        return 1
    count = 0
    for key, child in list(node.items()):
        if isinstance(child, dict):
            count += _visit_depth(child, depth - 1, path + (key,), on_mapping, on_leaf)
        elif depth == 2 and on_leaf is not None:
            on_leaf(node, key, path + (key,))
            count += 1
    return count


def _apply_at_depth(node: dict, value: dict, depth: int, path: tuple, key: Hashable) -> None:
    def set_here(mapping: dict, where: tuple) -> None:
        _merge_into(mapping, value, where, deep=False)

    def replace_leaf(parent: dict, child_key: Hashable, where: tuple) -> None:
        parent[child_key] = _normalize(value, where)

    if _visit_depth(node, depth, path, set_here, replace_leaf) == 0:
        raise ConfigError(
            f"'{dotted(path[:-1], key)}': there is no mapping at depth {depth} below "
            f"'{dotted(path)}' (depth 1 is its own value)"
        )


def _swap_at_depth(node: dict, value: dict, depth: int, path: tuple, key: Hashable) -> None:
    label = dotted(path[:-1], key)
    targets: list[tuple[dict, tuple]] = []
    _visit_depth(node, depth, path, lambda mapping, where: targets.append((mapping, where)))
    if not targets:
        raise ConfigError(
            f"'{label}': there is no mapping at depth {depth} below '{dotted(path)}' "
            f"(depth 1 is its own value)"
        )
    if not value:
        raise ConfigError(f"'{label}': say what to swap in, e.g. {{NewClassName: {{}}}}")
    for first, second in value.items():
        if second is None or isinstance(second, dict):
            _swap_only_key(targets, first, second, label)
        elif isinstance(second, str):
            _rename_key(targets, first, second, label, depth, path)
        else:
            raise ConfigError(
                f"'{label}': {{{first}: {second!r}}} is not a swap; use {{NewName: {{}}}} to "
                f"rename the only key, or {{OldName: NewName}}"
            )


def _rename_in_place(mapping: dict, old: Hashable, new: Hashable, new_value: Any) -> None:
    items = list(mapping.items())
    mapping.clear()
    for existing, existing_value in items:
        if existing == old:
            mapping[new] = new_value
        else:
            mapping[existing] = existing_value


def _swap_only_key(targets: list[tuple[dict, tuple]], new: Hashable, extra: dict | None, label: str) -> None:
    """``{New: {}}``: rename the single key of each target to ``new`` (merging ``extra``)."""
    for mapping, where in targets:
        if new in mapping:
            old = new
        elif len(mapping) == 1:
            old = next(iter(mapping))
        elif not mapping:
            raise ConfigError(f"'{label}': '{dotted(where)}' is empty; there is no key to swap")
        else:
            keys = ", ".join(str(k) for k in mapping)
            raise ConfigError(
                f"'{label}': '{dotted(where)}' has {len(mapping)} keys ({keys}), so "
                f"{{{new}: {{}}}} is ambiguous; name the one to replace: {{OldName: {new}}}"
            )
        kept = mapping[old]
        if extra:
            base = kept if isinstance(kept, dict) else {}
            kept = _merge_into(base, extra, where + (new,))
        _rename_in_place(mapping, old, new, kept)


def _rename_key(
    targets: list[tuple[dict, tuple]], old: Hashable, new: str, label: str, depth: int, path: tuple
) -> None:
    """``{Old: New}``: rename ``old`` to ``new`` wherever ``old`` is a key of a target."""
    renamed = already = 0
    for mapping, where in targets:
        if old in mapping:
            if new in mapping and new != old:
                raise ConfigError(
                    f"'{label}': cannot rename '{old}' to '{new}' in '{dotted(where)}': "
                    f"'{new}' is already there"
                )
            _rename_in_place(mapping, old, new, mapping[old])
            renamed += 1
        elif new in mapping:
            already += 1
    if renamed == 0 and already == 0:
        known = sorted({str(k) for mapping, _ in targets for k in mapping})
        close = difflib.get_close_matches(str(old), known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"keys there: {', '.join(known)}"
        raise ConfigError(
            f"'{label}': no key '{old}' at depth {depth} below '{dotted(path)}' to rename to '{new}'; {hint}"
        )


# --------------------------------------------------------------------------------------------
# combine_overrides


def combine_overrides(first: dict, second: dict, path: tuple = ()) -> dict:
    """One override equivalent to applying ``first`` and then ``second``.

    Raises :class:`ConfigError` when the two cannot be expressed as one mapping (e.g. a key
    merged both before and after a ``~SWAP~`` of it): such flags belong in one value.
    """
    result = copy.deepcopy(first)
    for key, value in second.items():
        spec = effective_spec(key, value, path)
        name = spec.name
        entries = [k for k in result if effective_spec(k, result[k], path).name == name]
        latest = entries[-1] if entries else None
        latest_spec = effective_spec(latest, result[latest], path) if entries else None
        value = copy.deepcopy(value)

        if spec.kind in ("override", "delete", "search"):
            for k in entries:  # this key's earlier history no longer matters
                del result[k]
            result[key] = value
        elif spec.kind == "plain":
            if latest_spec is None or (latest_spec.kind in ("apply", "swap") and name not in result):
                result[key] = value
            elif latest_spec.kind == "plain":
                if isinstance(result[latest], dict) and isinstance(value, dict):
                    result[latest] = combine_overrides(result[latest], value, path + (name,))
                elif isinstance(value, dict):  # a leaf, then a mapping: the mapping replaces it
                    del result[latest]
                    result[_override_key(name)] = value
                else:
                    result[latest] = value
            elif latest_spec.kind == "override":
                previous = result[latest]
                if isinstance(previous, dict) and isinstance(value, dict):
                    result[latest] = combine_overrides(previous, value, path + (name,))
                else:
                    result[latest] = value
            elif latest_spec.kind in ("delete", "search"):
                del result[latest]
                result[_override_key(name)] = value
            else:
                raise _cannot_combine(path, key, latest)
        else:  # apply / swap
            if key not in result:
                result[key] = value
            elif latest == key and spec.kind == "apply":
                result[key] = _combine_set(result[key], value, path + (name,))
            else:
                raise _cannot_combine(path, key, latest)
    return result


def _combine_set(first: dict, second: dict, path: tuple) -> dict:
    """Two ``~APPLY~N`` values as one: each key of ``second`` replaces what ``first`` said about
    the same name (the keys of an applied value are set, not merged)."""
    result = copy.deepcopy(first)
    for key, value in second.items():
        spec = effective_spec(key, value, path)
        earlier = [k for k in result if effective_spec(k, result[k], path).name == spec.name]
        kinds = {spec.kind, *(effective_spec(k, result[k], path).kind for k in earlier)}
        if earlier and kinds & {"apply", "swap"}:
            raise _cannot_combine(path, key, earlier[-1])
        for k in earlier:
            del result[k]
        result[key] = copy.deepcopy(value)
    return result


def _override_key(name: Hashable) -> Hashable:
    return f"{name}~OVERRIDE~" if isinstance(name, str) else name


def _cannot_combine(path: tuple, key: Hashable, latest: Hashable) -> ConfigError:
    return ConfigError(
        f"'{dotted(path, key)}' is given again after '{dotted(path, latest)}'; the two cannot be "
        f"combined in order: put their contents in one flag"
    )
