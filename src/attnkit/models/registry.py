"""The model registry: one name per model, one config dataclass per name.

A checkpoint stores ``{"model": name, "config": {...}}``; :func:`build` turns that back into
the model. Registering is one decorator line beside the model class:

    >>> from dataclasses import dataclass
    >>> from torch import nn
    >>> @dataclass
    ... class TinyConfig:
    ...     dim: int = 4  # the only source of this default
    >>> @register("tiny-example", TinyConfig)
    ... class Tiny(nn.Module):
    ...     def __init__(self, cfg: TinyConfig) -> None:
    ...         super().__init__()
    ...         self.cfg, self.proj = cfg, nn.Linear(cfg.dim, cfg.dim)
    >>> build("tiny-example", {"dim": 8}).proj.out_features
    8
    >>> unregister("tiny-example")
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = [
    "ModelEntry",
    "Variant",
    "build",
    "config_from_dict",
    "config_to_dict",
    "entry",
    "name_of",
    "names",
    "register",
    "register_variant",
    "unregister",
    "variants",
]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[nn.Module]
    config_cls: type


_MODELS: dict[str, ModelEntry] = {}


def register(name: str, config_cls: type) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make ``cls`` buildable as ``build(name, config)``.

    ``cls(config)`` must construct the model and keep the config as ``cls.cfg``.
    """
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls.__name__} must be a dataclass")

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _MODELS and _MODELS[name].cls is not cls:
            raise ValueError(f"a model named {name!r} is already registered")
        _MODELS[name] = ModelEntry(name, cls, config_cls)
        cls.registry_name = name  # type: ignore[attr-defined]  # a model class knows its name
        return cls

    return decorate


def unregister(name: str) -> None:
    _MODELS.pop(name, None)


@dataclass(frozen=True)
class Variant:
    """A named setting of a registered model, one of a family compared side by side (the
    price-series comparison's "attention-4h" is "series-attention" with 4 heads)."""

    family: str
    name: str
    model: str  # a registered model name
    settings: Mapping[str, Any]

    def build(self, config: Mapping[str, Any]) -> nn.Module:
        """The model with its variant's settings under ``config`` (the data's sizes, ...)."""
        return build(self.model, {**self.settings, **config})


_VARIANTS: dict[str, dict[str, Variant]] = {}


def register_variant(family: str, name: str, model: str, **settings: Any) -> Variant:
    """Name ``model`` with ``settings`` as variant ``name`` of ``family``; the settings must be
    fields of the model's config."""
    fields = {f.name for f in dataclasses.fields(entry(model).config_cls)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ValueError(f"unknown {model} config fields: {', '.join(unknown)}")
    v = Variant(family, name, model, dict(settings))
    _VARIANTS.setdefault(family, {})[name] = v
    return v


def variants(family: str) -> dict[str, Variant]:
    """The variants of ``family`` by name, in the order they were registered."""
    if family not in _VARIANTS:
        raise ValueError(f"no model variants of {family!r}; known: {', '.join(_VARIANTS)}")
    return dict(_VARIANTS[family])


def names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_MODELS)


def entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(names()) or 'none'}")
    return _MODELS[name]


def name_of(model: nn.Module) -> str:
    """The registered name of a model instance."""
    for e in _MODELS.values():
        if type(model) is e.cls:
            return e.name
    raise ValueError(f"{type(model).__name__} is not a registered model")


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(name: str, values: Mapping[str, Any]) -> Any:
    """The config dataclass of model ``name`` from a plain dict, checked field by field.

    Raises ValueError for unknown fields, missing required fields and values of the wrong
    type (an int field given 1.5 or "3"); the dataclass's own checks run afterwards.
    """
    cls = entry(name).config_cls
    if not isinstance(values, Mapping):
        raise ValueError(f"the config of model {name!r} must be a JSON object")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} config fields: {', '.join(unknown)}")
    for key, value in values.items():
        _check_type(f"{name} config {key}", value, hints[key])
    try:
        return cls(**values)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{name} config: {err}") from None


def _check_type(what: str, value: Any, hint: Any) -> None:
    """ValueError unless a JSON value fits a simple annotation (bool, int, float, str, ...)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", ())):
        options = typing.get_args(hint)
        for option in options:
            try:
                _check_type(what, value, option)
                return
            except ValueError:
                continue
        raise ValueError(f"{what} has an unexpected value {value!r}")
    if hint is type(None):
        ok = value is None
    elif hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    else:
        ok = True  # richer annotations are left to the dataclass's own checks
    if not ok:
        raise ValueError(f"{what} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def build(name: str, config: Any = None) -> nn.Module:
    """The model ``name`` built from ``config``: its config dataclass, a dict, or None."""
    e = entry(name)
    if config is None:
        config = e.config_cls()
    elif isinstance(config, Mapping):
        config = config_from_dict(name, config)
    elif not isinstance(config, e.config_cls):
        raise ValueError(
            f"model {name!r} takes a {e.config_cls.__name__}, got {type(config).__name__}"
        )
    return e.cls(config)
