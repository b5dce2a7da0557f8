"""Name -> class lookup, per kind, and object construction from ``{ClassName: {kwargs}}`` specs.

A config's class names run no code of their own: a name becomes an object only through this
registry (the one way a config imports code, ``plugin_paths``, needs the user's consent on the
command line: :mod:`dmlbench.user_plugins`). Names are
looked up first among classes registered with :func:`register` (dmlbench itself, its
``dmlbench.split_managers`` and ``dmlbench.plugins`` packages -- the repository root's
``split_managers/`` and ``plugins/`` are symlinks to them -- and entry points in the group
``dmlbench.plugins``),
then in the public namespace of the well-kept libraries listed in ``LIBRARY_SOURCES``.

Example::

    loss = build("loss", {"MultiSimilarityLoss": {"alpha": 2, "beta": 50}}, role="loss_funcs.metric_loss")
"""

from __future__ import annotations

import difflib
import enum
import importlib
import inspect
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from dmlbench.argument_types import check_argument_value, init_chain
from dmlbench.errors import ConfigError, RegistryError

#: Modules whose public callables are valid names for each kind (searched in order, after the
#: explicitly registered names).
LIBRARY_SOURCES: dict[str, tuple[str, ...]] = {
    "model": ("torchvision.models", "torch.nn"),
    "loss": ("pytorch_metric_learning.losses", "torch.nn"),
    "miner": ("pytorch_metric_learning.miners",),
    "sampler": ("pytorch_metric_learning.samplers", "torch.utils.data"),
    "reducer": ("pytorch_metric_learning.reducers",),
    "distance": ("pytorch_metric_learning.distances",),
    "regularizer": ("pytorch_metric_learning.regularizers",),
    "optimizer": ("torch.optim",),
    "lr_scheduler": ("torch.optim.lr_scheduler",),
    "transform": ("torchvision.transforms",),
    "dataset": (),
    "split_manager": (),
    "training_plugin": (),
    "factory": (),
}

#: For each kind, the base classes an object must derive from (``"module:Class"``), so that a
#: name resolves only to something of that kind (``typing.cast`` is no loss); library function
#: names are accepted only where listed in ``LIBRARY_FUNCTIONS``. Kinds absent here take any
#: class registered for them.
KIND_BASES: dict[str, tuple[str, ...]] = {
    "model": ("torch.nn:Module",),
    # losses only (not every module: a misspelt loss is never offered ReLU or CosineSimilarity)
    "loss": (
        "torch.nn.modules.loss:_Loss",
        "pytorch_metric_learning.losses:BaseMetricLossFunction",
        "pytorch_metric_learning.losses:BaseLossWrapper",
        "pytorch_metric_learning.losses:MultipleLosses",
    ),
    "miner": ("pytorch_metric_learning.miners:BaseMiner",),
    "sampler": ("torch.utils.data:Sampler",),
    "reducer": ("pytorch_metric_learning.reducers:BaseReducer",),
    "distance": ("pytorch_metric_learning.distances:BaseDistance",),
    "regularizer": ("pytorch_metric_learning.regularizers:BaseRegularizer",),
    "optimizer": ("torch.optim:Optimizer",),
    "lr_scheduler": ("torch.optim.lr_scheduler:LRScheduler", "torch.optim.lr_scheduler:ReduceLROnPlateau"),
    "training_plugin": ("dmlbench.training.plugins:TrainingPlugin",),
}

#: Kinds whose library modules also offer factory functions (torchvision's ``resnet50``); only
#: the module's documented builders count (``torchvision.models.list_models()``).
LIBRARY_FUNCTIONS: dict[str, str] = {"model": "torchvision.models"}

#: Keyword arguments whose ``{ClassName: {...}}`` value is itself built through the registry.
NESTED_OBJECT_KWARGS: dict[str, str] = {
    "distance": "distance",
    "reducer": "reducer",
    "embedding_regularizer": "regularizer",
    "weight_regularizer": "regularizer",
    "miner": "miner",
    "loss": "loss",
    "inner_loss": "loss",
}

#: Packages imported on first lookup so that their ``@register`` decorators run.
BUILTIN_MODULES: tuple[str, ...] = (
    "dmlbench.data",
    "dmlbench.models",
    "dmlbench.training",
    "dmlbench.split_managers",
    "dmlbench.plugins",
)

ENTRY_POINT_GROUP = "dmlbench.plugins"

_registered: dict[str, dict[str, Any]] = {kind: {} for kind in LIBRARY_SOURCES}
_loaded = False


def register(kind: str, name: str | None = None) -> Callable[[Any], Any]:
    """Class decorator: make ``cls`` available to configs as ``name`` (default: its ``__name__``)."""
    if kind not in _registered:
        raise ValueError(f"unknown registry kind {kind!r}; kinds: {sorted(_registered)}")

    def decorator(obj: Any) -> Any:
        _registered[kind][name or obj.__name__] = obj
        return obj

    return decorator


def _ensure_loaded() -> None:
    """Import the built-in modules and entry-point plugins once, so their registrations exist."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in BUILTIN_MODULES:
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # a real import error inside the package
                raise
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()


def _bases(kind: str) -> tuple[type, ...]:
    bases = []
    for spec in KIND_BASES.get(kind, ()):
        module_name, _, attr = spec.partition(":")
        bases.append(getattr(importlib.import_module(module_name), attr))
    return tuple(bases)


def _builder_functions(kind: str) -> set[str]:
    module_name = LIBRARY_FUNCTIONS.get(kind)
    if module_name is None:
        return set()
    module = importlib.import_module(module_name)
    return set(module.list_models(module=module)) if hasattr(module, "list_models") else set()


def fits_kind(kind: str, name: str, obj: Any, source: str | None) -> bool:
    """Whether ``obj`` may be used as a ``kind``: a subclass of the kind's bases (``KIND_BASES``);
    for a kind without bases, a class (registered, or defined in the library module ``source``);
    a library function only if it is one of the kind's documented builders (``LIBRARY_FUNCTIONS``)."""
    bases = _bases(kind)
    if inspect.isclass(obj):
        if bases:
            return issubclass(obj, bases) and not inspect.isabstract(obj)
        if issubclass(obj, (enum.Enum, BaseException)):
            return False
        return source is None or obj.__module__.split(".")[0] == source.split(".")[0]
    if source is not None:
        return inspect.isfunction(obj) and name in _builder_functions(kind)
    return not bases  # a registered factory function, for kinds without base classes


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _library_names(kind: str) -> Iterable[tuple[str, Any]]:
    for module_name in LIBRARY_SOURCES[kind]:
        module = importlib.import_module(module_name)
        for attr in dir(module):
            if attr.startswith("_"):
                continue
            obj = getattr(module, attr)
            if fits_kind(kind, attr, obj, source=module_name):
                yield attr, obj


def available(kind: str) -> list[str]:
    """All names a config may use for ``kind``."""
    _ensure_loaded()
    names = {name for name, obj in _registered[kind].items() if fits_kind(kind, name, obj, source=None)}
    names.update(name for name, _ in _library_names(kind))
    return sorted(names)


def nearest_names(kind: str, name: str, n: int = 5) -> list[str]:
    """Registered names closest to ``name`` (case-insensitive), for error messages."""
    names = available(kind)
    lowered = {candidate.lower(): candidate for candidate in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[c] for c in close]


def lookup(kind: str, name: str, role: str | None = None) -> Any:
    """The class or factory function registered as ``name`` for ``kind``."""
    if kind not in _registered:
        raise ValueError(f"unknown registry kind {kind!r}; kinds: {sorted(_registered)}")
    _ensure_loaded()
    where = f" for {role}" if role else ""
    if name in _registered[kind]:
        obj = _registered[kind][name]
        if fits_kind(kind, name, obj, source=None):
            return obj
        raise RegistryError(
            f"{name!r}{where} is registered as {_article(kind)} but is not one "
            f"(expected a subclass of {', '.join(KIND_BASES[kind])})"
        )
    misfit = None
    for module_name in LIBRARY_SOURCES[kind]:
        module = importlib.import_module(module_name)
        obj = getattr(module, name, None)
        if obj is not None and not name.startswith("_"):
            if fits_kind(kind, name, obj, source=module_name):
                return obj
            misfit = misfit or f"{module_name}.{name}"
    suggestions = nearest_names(kind, name)
    hint = f"; nearest: {', '.join(suggestions)}" if suggestions else ""
    what = f"{misfit} is not {_article(kind)}" if misfit else f"unknown {kind} {name!r}"
    raise RegistryError(f"{what}{where}{hint}")


def parse_spec(spec: Any, role: str) -> tuple[str, dict[str, Any]]:
    """Split ``{ClassName: {kwargs}}`` (or a bare ``"ClassName"``) into name and kwargs."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{role}: expected one {{ClassName: {{kwargs}}}} entry, got {spec!r}")
    ((name, kwargs),) = spec.items()
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{role}.{name}: keyword arguments must be a mapping, got {kwargs!r}")
    return str(name), dict(kwargs)


def _looks_like_spec(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(next(iter(value)), str)
        and next(iter(value))[:1].isupper()
    )


def build(
    kind: str, spec: Any, role: str | None = None, context: dict[str, Any] | None = None, **extra_kwargs: Any
) -> Any:
    """Construct the object described by ``spec``.

    ``context`` holds values the wiring knows (e.g. ``num_classes``, ``embedding_size``): each is
    passed to a constructor that accepts it (following ``**kwargs`` up the ``__init__`` chain)
    unless the config sets it, here and in nested specs. ``extra_kwargs`` are always passed (e.g.
    ``params`` for an optimizer) and may not be set from the config.
    """
    role = role or kind
    name, kwargs = parse_spec(spec, role)
    factory = lookup(kind, name, role)
    for key, value in list(kwargs.items()):
        nested_kind = NESTED_OBJECT_KWARGS.get(key)
        if nested_kind and _looks_like_spec(value):
            kwargs[key] = build(nested_kind, value, role=f"{role}.{name}.{key}", context=context)
    for key, value in (context or {}).items():
        if key not in kwargs and accepts_keyword(factory, key):
            kwargs[key] = value
    kwargs.update(extra_kwargs)
    _check_kwargs(factory, kwargs, f"{role}.{name}")
    try:
        return factory(**kwargs)
    except (TypeError, ValueError, AssertionError) as error:
        hint = _unexpected_keyword_hint(factory, str(error))
        raise ConfigError(f"{role}: {name}({_format_kwargs(kwargs)}) failed: {error}{hint}") from error


def _keyword_verdict(factory: Any, name: str) -> bool | None:
    """Whether ``factory(name=...)`` is accepted (True) or certainly rejected (False), following
    ``**kwargs`` up the ``__init__`` chain (``CosFaceLoss(*args, **kwargs)`` forwards
    ``num_classes``); None when a signature cannot be read or the chain ends in ``**kwargs``."""
    for target in init_chain(factory):
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return None
        found = parameters.get(name)
        if found is not None and found.kind in (found.POSITIONAL_OR_KEYWORD, found.KEYWORD_ONLY):
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return False
    return None


def accepts_keyword(factory: Any, name: str) -> bool:
    """Whether a named parameter along ``factory``'s ``__init__`` chain takes ``name``."""
    return _keyword_verdict(factory, name) is True


def check_keywords(kind: str, spec: Any, role: str) -> None:
    """Raise :class:`ConfigError` for a keyword argument the class certainly rejects (with the
    nearest accepted names) or a value its signature rejects (:mod:`dmlbench.argument_types`),
    here and in nested specs, without building anything."""
    name, kwargs = parse_spec(spec, role)
    factory = lookup(kind, name, role)
    for key, value in kwargs.items():
        nested_kind = NESTED_OBJECT_KWARGS.get(key)
        if nested_kind and _looks_like_spec(value):
            check_keywords(nested_kind, value, f"{role}.{name}.{key}")
        else:
            _check_kwargs(factory, {key: value}, f"{role}.{name}")
            check_argument_value(factory, key, value, f"{role}.{name}")


def _accepted_names(factory: Any) -> list[str]:
    """Keyword names a class accepts along its ``__init__`` chain (``**kwargs`` forwarded up)."""
    names: list[str] = []
    for target in init_chain(factory):
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            continue
        names += [
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name != "self"
            and p.name not in names
        ]
    return names


def _keyword_hint(factory: Any, unknown: str) -> str:
    """`` (did you mean alpha?); accepted: alpha, beta, ...`` for an unknown keyword."""
    accepted = _accepted_names(factory)
    close = difflib.get_close_matches(unknown, accepted, n=3, cutoff=0.5)
    return (f" (did you mean {', '.join(close)}?)" if close else "") + f"; accepted: {', '.join(accepted)}"


def _unexpected_keyword_hint(factory: Any, message: str) -> str:
    marker = "unexpected keyword argument '"
    if marker not in message:
        return ""
    return _keyword_hint(factory, message.split(marker, 1)[1].split("'", 1)[0])


def _check_kwargs(factory: Any, kwargs: dict[str, Any], where: str) -> None:
    """Reject keyword arguments the constructor certainly does not accept, naming the accepted ones."""
    for key in kwargs:
        if _keyword_verdict(factory, key) is False:
            raise ConfigError(f"{where}: unknown argument {key!r}{_keyword_hint(factory, key)}")


def _format_kwargs(kwargs: dict[str, Any]) -> str:
    """``key=value`` for the config's own values; data handed in by the wiring (label arrays,
    data sets, parameters) is summarised instead of printed."""

    def short(value: Any) -> str:
        if isinstance(value, (bool, int, float, str, type(None))):
            return repr(value)
        if isinstance(value, (list, tuple, dict)) and len(repr(value)) <= 60:
            return repr(value)
        shape = getattr(value, "shape", None)
        if shape is not None:
            return f"<{type(value).__name__} of shape {tuple(shape)}>"
        if hasattr(value, "__len__"):
            return f"<{type(value).__name__} of length {len(value)}>"
        return f"<{type(value).__name__}>"

    return ", ".join(f"{key}={short(value)}" for key, value in kwargs.items() if key != "params")
