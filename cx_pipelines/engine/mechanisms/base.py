"""What every mechanism kind provides, and the loader interface its ``load`` is given.

A mechanism kind is one class (a dataclass of its compiled form, subclassing
:class:`MechanismKind`) that owns everything about the kind:

* ``KIND``, ``SCHEMA_PROPERTIES``, ``SCHEMA_REQUIRED`` (and ``SCHEMA_DEFS``): its name and
  its keys in the strategy file's JSON Schema;
* ``load``: the checks and the compiled form, from the validated YAML mapping;
* ``evaluate_batch``: its batch form, once over all rows of its level;
* ``evaluate_record``: its plain per-record reference form (the meaning, and the oracle
  of the property test); ``fast_record``: an equivalent prepared form the per-record
  evaluator runs (by default the reference itself);
* ``trace_fields`` / ``trace_rows``: its entries in a reason-trace step, rendered
  column-wise as JSON text or row by row as dicts (the per-record form writes them into
  ``step`` directly).

The kinds are gathered in the registry of :mod:`cx_pipelines.engine.mechanisms`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

from cx_pipelines.engine.evaluation.shared import canonical
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EngineError
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.source import SourceMap

RecordForm = Callable[[Any, Any, dict, list], Any]
"""``(state, record, step, calls) -> value``: one customer's or account's evaluation."""


class Loader(Protocol):
    """The loader's helpers a kind's ``load`` uses (see ``loading.compile.Compiler``)."""

    source: SourceMap
    errors: list[EngineError]
    warnings: list[EngineError]

    def loc(self, *path: str | int): ...

    def error(self, message: str, path: Sequence[str | int], *, symbol=None, suggestion=None): ...

    def expression(
        self, value: Any, path: Sequence[str | int], *, over: str | None, expected: ValueType | None
    ) -> m.Expression | None: ...

    def attribute_ref(
        self, name: str, path: Sequence[str | int], *, over: str | None
    ) -> m.Attribute | None: ...

    def check_name(
        self, name: str, known: Iterable[str], what: str, path, hint: str = ""
    ) -> bool: ...

    def output_type_is(
        self, attribute: m.Attribute | None, value_type: ValueType, path, what: str
    ) -> None: ...

    def literal_fits(self, value: Any, attribute: m.Attribute | None, path) -> None: ...


def in_band(value: float, low: float | None, high: float | None) -> bool:
    """``value`` in the half-open band ``[low, high)`` (None: unbounded)."""
    return (low is None or value >= low) and (high is None or value < high)


def settled(value: Any, value_type: ValueType) -> Any:
    """A constant output in its canonical form, or as written when that fails (so that the
    evaluation that reaches it fails as before)."""
    try:
        return canonical(value, value_type)
    except (EngineError, TypeError, ValueError):
        return value


class MechanismKind(m.Mechanism):
    """Base of every mechanism kind; see the module docstring for the contract."""

    KIND: ClassVar[str] = ""
    SCHEMA_PROPERTIES: ClassVar[dict[str, Any]] = {}
    SCHEMA_REQUIRED: ClassVar[list[str]] = []
    SCHEMA_DEFS: ClassVar[dict[str, Any]] = {}
    AGGREGATES_ACCOUNTS: ClassVar[bool] = False  # ``over`` is read, the output is the customer's

    @classmethod
    def load(
        cls, loader: Loader, name: str, spec: dict, path: tuple, over: str | None, output
    ) -> MechanismKind | None:
        raise NotImplementedError

    @property
    def level(self) -> str | None:
        """Where it runs and writes: None for the customer, else the account type."""
        return None if self.AGGREGATES_ACCOUNTS else self.over

    def call_sites(self) -> list[tuple[str, tuple]]:
        """Mechanisms this one may call, each with the path (inside it) of the call."""
        return []

    def models(self, model_versions: dict | None) -> dict[str, str]:
        """Registered model → version for the models this mechanism reads."""
        return {}

    # ------------------------------------------------------------ batch
    def evaluate_batch(self, run: Any, level: str | None, mask, detail: dict, calls: list):
        """Values for every row of ``level`` (``run`` is the batch run); fills ``detail``
        with what ``trace_fields`` / ``trace_rows`` need and ``calls`` with
        ``(mechanism, row mask)`` pairs to run next."""
        raise NotImplementedError

    def trace_fields(self, detail: dict, models: dict[str, str], field) -> dict[str, Any]:
        """Entries of a batch step's JSON template; ``field(text_column)`` places a column."""
        return {}

    def trace_rows(self, detail: dict, models: dict[str, str]) -> Callable[[dict, int], None]:
        """A function writing this kind's entries of row ``row`` into a step dict."""
        return _nothing

    # ------------------------------------------------------------ per record
    def evaluate_record(self, state: Any, record: Any, step: dict, calls: list) -> Any:
        """The reference form: the value for one customer's or account's ``record``."""
        raise NotImplementedError

    def fast_record(self) -> RecordForm:
        """A form equivalent to ``evaluate_record`` prepared once per strategy."""
        return self.evaluate_record


def _nothing(item: dict, row: int) -> None:
    return None
