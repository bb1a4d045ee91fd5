"""Registry of user exits: named Python functions a strategy may call.

A user exit receives its declared inputs as keyword arguments (one customer or
one account) and returns one value of the mechanism's output type. An optional
``batch_function`` receives the same names as numpy arrays and must return the
same values element-wise; without one the batch evaluator calls ``function`` per
row, which is slower but identical by construction.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cx_pipelines.engine.language.errors import EngineError, Location, StrategyValidationError


@dataclass(frozen=True)
class UserExit:
    name: str
    function: Callable[..., Any]
    batch_function: Callable[..., Any] | None = None


_REGISTRY: dict[str, UserExit] = {}


def register_user_exit(
    name: str,
    function: Callable[..., Any],
    *,
    batch_function: Callable[..., Any] | None = None,
) -> None:
    """Make ``function`` callable from strategies as ``type: user_exit, function: name``."""
    if not name or not isinstance(name, str):
        raise EngineError(f"a user exit needs a non-empty name, got {name!r}")
    _REGISTRY[name] = UserExit(name=name, function=function, batch_function=batch_function)


def resolve_user_exit(name: str, *, module: str | None, location: Location) -> UserExit:
    """The registered exit called ``name``, importing ``module`` first when given."""
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise StrategyValidationError(
                f"user exit module {module!r} cannot be imported: {error}", location=location
            ) from error
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        raise StrategyValidationError(
            f"user exit {name!r} is not registered (call register_user_exit or set `module:`)",
            location=location,
            symbol=name,
            suggestion=close[0] if close else None,
        )
    return _REGISTRY[name]
