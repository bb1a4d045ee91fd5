"""Every error the analytical models raise, in one hierarchy under :class:`ModelError`.

Catch :class:`ModelError` for "the model could not do what was asked", or a subclass for one
cause. Data problems are also ``ValueError`` and fitting/usage problems ``RuntimeError``, so
code written against the built-in exceptions keeps working.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every error raised by ``cx_pipelines.ml``."""


class TrainingDataError(ModelError, ValueError):
    """A training or scoring frame lacks columns, has an unusable target or bad feature types."""


class InsufficientDataError(TrainingDataError):
    """Too few examples to train (or to judge) a model: not a mistake in the data, just too little.

    ``counts`` holds the examples found (e.g. ``{"positive": 2, "negative": 60}``) and
    ``needed`` what would make the model trainable; the training assets record both and
    carry on without a new version instead of failing the run.
    """

    def __init__(self, message: str, *, counts: dict[str, int], needed: str) -> None:
        super().__init__(f"{message}; {needed}")
        self.counts = counts
        self.needed = needed


class EvaluationError(ModelError, ValueError):
    """Scores, labels or treatment flags cannot be evaluated (wrong shape, NaN, not binary, or a
    holdout whose outcome is the same for every row)."""


class ModelSpecError(ModelError, ValueError):
    """A model spec file is missing, unreadable or does not follow the spec schema."""


class BTYDFitError(ModelError, RuntimeError):
    """The likelihood could not be maximised to a finite optimum."""


class BTYDNotFittedError(ModelError, RuntimeError):
    """A prediction was asked of a model that has not been fitted."""
