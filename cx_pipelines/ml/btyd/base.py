"""Shared machinery of the BTYD models: data contract, maximum likelihood, standard errors.

Every model is fitted on *sufficient statistics*: rows with identical inputs are grouped
and their log-likelihood is weighted by the group size, so a million customers with
day-resolution recency fit as fast as their few hundred thousand distinct histories.
Parameters are optimised on the log scale (they are all positive) by L-BFGS-B, with the
analytic gradient where the model has one. Standard errors come from the inverse of a
numerical Hessian of the log-likelihood on that scale (differences of the analytic
gradient, else of the likelihood), mapped back with the delta method.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from threadpoolctl import threadpool_limits

from cx_pipelines.ml.errors import BTYDFitError, BTYDNotFittedError  # noqa: E402

__all__ = ["BTYDFitError", "BTYDNotFittedError", "MaximumLikelihoodModel", "check_data"]


def check_data(data: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise ``ValueError`` with an exact message when ``data`` breaks the BTYD data contract."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for column in ("customer_id", *columns):
        if column not in data.columns:
            raise ValueError(f"Required column {column} is missing")
    if len(data) == 0:
        raise ValueError("Data has no rows: at least one customer is needed")
    if data["customer_id"].isna().any():
        raise ValueError("Column customer_id has missing entries")
    if data["customer_id"].duplicated().any():
        raise ValueError("Column customer_id has duplicate entries")
    for column in columns:
        values = pd.to_numeric(data[column], errors="coerce")
        if values.isna().any():
            raise ValueError(f"Column {column} has missing or non-numeric entries")
        if not np.isfinite(values.to_numpy(dtype="float64")).all():
            raise ValueError(f"Column {column} has infinite entries")
        if (values < 0).any():
            raise ValueError(f"Column {column} has negative entries")
    if "frequency" in columns:
        frequency = data["frequency"].to_numpy(dtype="float64")
        if (frequency != np.round(frequency)).any():
            raise ValueError("Column frequency has non-integer entries")
    if "recency" in columns and "T" in columns:
        if (data["recency"].to_numpy() > data["T"].to_numpy()).any():
            raise ValueError("Column recency has entries greater than T")
        if ((data["frequency"].to_numpy() == 0) & (data["recency"].to_numpy() > 0)).any():
            raise ValueError("Column recency has entries greater than 0 where frequency is 0")


class DistinctColumn:
    """A column kept as its distinct values and each row's code into them.

    BTYD inputs have few distinct values per column (frequencies, days), so terms such as
    gammaln(r + x) or log(alpha + T) are computed once per distinct value and gathered.
    """

    __slots__ = ("codes", "distinct", "values")

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype="float64")
        self.distinct, self.codes = np.unique(self.values, return_inverse=True)

    def apply(self, function) -> np.ndarray:
        """``function`` of every row, evaluated once per distinct value."""
        return function(self.distinct)[self.codes]


def sufficient_statistics(
    data: pd.DataFrame, columns: Sequence[str]
) -> tuple[list[DistinctColumn], np.ndarray]:
    """Distinct rows of ``columns`` and how many customers share each one."""
    grouped = data.groupby(list(columns), sort=False).size()
    frame = grouped.reset_index()
    arrays = [DistinctColumn(frame[column].to_numpy(dtype="float64")) for column in columns]
    return arrays, grouped.to_numpy(dtype="float64")


def numerical_hessian(function, point: np.ndarray, *, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar ``function`` at ``point``."""
    size = len(point)
    hessian = np.empty((size, size))
    for i in range(size):
        for j in range(i, size):
            shift_i = np.zeros(size)
            shift_j = np.zeros(size)
            shift_i[i] = step
            shift_j[j] = step
            value = (
                function(point + shift_i + shift_j)
                - function(point + shift_i - shift_j)
                - function(point - shift_i + shift_j)
                + function(point - shift_i - shift_j)
            ) / (4 * step * step)
            hessian[i, j] = hessian[j, i] = value
    return hessian


def _jacobian_of(gradient, point: np.ndarray, *, step: float = 1e-5) -> np.ndarray:
    """Central-difference Jacobian of a vector ``gradient`` function, symmetrised."""
    columns = []
    for i in range(len(point)):
        shift = np.zeros(len(point))
        shift[i] = step
        columns.append((gradient(point + shift) - gradient(point - shift)) / (2 * step))
    jacobian = np.column_stack(columns)
    return (jacobian + jacobian.T) / 2


class MaximumLikelihoodModel:
    """Base of the BTYD models: options in ``__init__``, ``fit`` returns the model.

    Subclasses define ``parameter_names``, ``required_columns``, ``_statistics(data)`` and
    ``_log_likelihood(params, *statistics)`` (per-row log-likelihood, vectorised).
    After ``fit``: ``params_`` and ``standard_errors_`` (Series indexed by the papers'
    parameter names), ``log_likelihood_`` (sum over customers), ``n_customers_``,
    ``converged_``, ``total_weight_`` (customers the likelihood is averaged over) and
    ``fitted_data_`` (the rows predictions default to); all state set in ``fit`` ends
    with ``_``, as in scikit-learn.

    Options: ``penalizer`` adds ``penalizer * sum(log(param)^2)`` to the mean negative
    log-likelihood (0, the papers' plain maximum likelihood, by default; a small value
    steadies fits on tiny or degenerate data); ``initial_params`` by name (default 1 each);
    ``max_iterations`` and ``tolerance`` of the optimiser.
    """

    parameter_names: tuple[str, ...] = ()
    required_columns: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        initial_params: dict[str, float] | None = None,
        max_iterations: int = 2000,
        tolerance: float = 1e-10,
    ) -> None:
        self.penalizer = penalizer
        self.initial_params = initial_params
        self.max_iterations = max_iterations
        self.tolerance = tolerance

    # -- subclass hooks -------------------------------------------------------------
    def _statistics(self, data: pd.DataFrame) -> tuple[list[np.ndarray], np.ndarray]:
        return sufficient_statistics(data, self.required_columns)

    def _log_likelihood(self, params: np.ndarray, *statistics: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _gradient(self, params: np.ndarray, *statistics: np.ndarray) -> np.ndarray:
        """Per-row gradient (parameters x rows) of the log-likelihood, if known in closed form."""
        raise NotImplementedError

    def _check_identifiable(self, data: pd.DataFrame) -> None:
        """Raise when the data cannot identify the parameters (default: nothing to check)."""

    # -- fitting --------------------------------------------------------------------
    def _objective(self, log_params: np.ndarray, statistics, weights) -> float:
        """Mean negative log-likelihood (plus penalty) at log parameters."""
        params = np.exp(log_params)
        with np.errstate(all="ignore"):
            total = float(np.dot(weights, self._log_likelihood(params, *statistics)))
        if not np.isfinite(total):
            return np.inf
        return -total / self.total_weight_ + self.penalizer * float(np.sum(log_params**2))

    def _objective_gradient(self, log_params: np.ndarray, statistics, weights) -> np.ndarray:
        """Gradient of ``_objective`` with respect to the log parameters (chain rule)."""
        params = np.exp(log_params)
        with np.errstate(all="ignore"):
            gradient = self._gradient(params, *statistics) @ weights
        gradient = np.where(np.isfinite(gradient), gradient, 0.0)
        return -params * gradient / self.total_weight_ + 2.0 * self.penalizer * log_params

    def _start(self) -> np.ndarray:
        if self.initial_params is None:
            return np.zeros(len(self.parameter_names))
        unknown = set(self.initial_params) - set(self.parameter_names)
        if unknown:
            raise ValueError(
                f"initial_params has unknown names {sorted(unknown)}; "
                f"expected {list(self.parameter_names)}"
            )
        return np.log([self.initial_params.get(name, 1.0) for name in self.parameter_names])

    def fit(self, data: pd.DataFrame) -> MaximumLikelihoodModel:
        """Maximise the likelihood of ``data`` (one row per customer); returns the model."""
        check_data(data, self.required_columns)
        if len(data) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 customers to estimate its parameters, "
                f"got {len(data)}"
            )
        self._check_identifiable(data)
        statistics, weights = self._statistics(data)
        self.total_weight_ = float(weights.sum())

        def objective(point: np.ndarray) -> float:
            return self._objective(point, statistics, weights)

        analytic = type(self)._gradient is not MaximumLikelihoodModel._gradient
        if analytic:

            def jacobian(point: np.ndarray) -> np.ndarray:
                return self._objective_gradient(point, statistics, weights)
        else:
            jacobian = "3-point"
        # L-BFGS-B's small dense algebra only loses to BLAS threads fighting over cores.
        with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
            result = optimize.minimize(
                objective,
                self._start(),
                jac=jacobian,
                method="L-BFGS-B",
                bounds=[(-20.0, 20.0)] * len(self.parameter_names),
                options={"maxiter": self.max_iterations, "ftol": self.tolerance, "gtol": 1e-9},
            )
        if not np.isfinite(result.fun):
            raise BTYDFitError(
                f"{type(self).__name__}: the log-likelihood is not finite at any point tried; "
                "check the data (units of recency and T, outliers) or pass initial_params"
            )
        log_params = result.x
        self.params_ = pd.Series(
            np.exp(log_params), index=list(self.parameter_names), name="estimate"
        )
        self.log_likelihood_ = float(
            np.dot(weights, self._log_likelihood(self.params_.to_numpy(), *statistics))
        )
        self.n_customers_ = int(weights.sum())
        self.fitted_data_ = data
        self.converged_ = bool(result.success)
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__}: the optimiser stopped before converging "
                f"({result.message}); the parameters may be inaccurate",
                RuntimeWarning,
                stacklevel=2,
            )
        if analytic:
            hessian = _jacobian_of(jacobian, log_params)
        else:
            hessian = numerical_hessian(objective, log_params)
        self.standard_errors_ = self._standard_errors(hessian * self.total_weight_, log_params)
        return self

    def _standard_errors(self, hessian: np.ndarray, log_params: np.ndarray) -> pd.Series:
        names = list(self.parameter_names)
        try:
            covariance = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            covariance = np.full_like(hessian, np.nan)
        variances = np.diag(covariance)
        if not np.all(np.isfinite(variances)) or np.any(variances <= 0):
            warnings.warn(
                f"{type(self).__name__}: the Hessian of the log-likelihood is not positive "
                "definite at the optimum; standard errors are set to NaN (parameters are "
                "poorly identified by these data)",
                RuntimeWarning,
                stacklevel=3,
            )
            return pd.Series(np.nan, index=names, name="standard_error")
        # Delta method: se(theta) = theta * se(log theta).
        return pd.Series(
            np.exp(log_params) * np.sqrt(variances), index=names, name="standard_error"
        )

    def log_likelihood(
        self, data: pd.DataFrame, *, params: dict[str, float] | None = None
    ) -> float:
        """Log-likelihood of ``data`` at the fitted parameters, or at ``params`` if given.

        Lets fits be compared on the same footing (e.g. another package's estimates, or a
        holdout sample).
        """
        if params is None:
            values = self._fitted().to_numpy()
        else:
            values = np.array([float(params[name]) for name in self.parameter_names])
        data = self._likelihood_rows(data)
        statistics, weights = self._statistics(data)
        with np.errstate(all="ignore"):
            return float(np.dot(weights, self._log_likelihood(values, *statistics)))

    def _likelihood_rows(self, data: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``data`` the likelihood is about (checked)."""
        check_data(data, self.required_columns)
        return data

    # -- reporting ------------------------------------------------------------------
    def _fitted(self) -> pd.Series:
        if not hasattr(self, "params_"):
            raise BTYDNotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit(data) first"
            )
        return self.params_

    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals (normal on the log scale)."""
        params = self._fitted()
        se = self.standard_errors_
        log_se = se / params
        return pd.DataFrame(
            {
                "estimate": params,
                "standard_error": se,
                "lower_95": params * np.exp(-1.96 * log_se),
                "upper_95": params * np.exp(1.96 * log_se),
            }
        )

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            values = ", ".join(f"{name}={value:.4g}" for name, value in self.params_.items())
            return f"{type(self).__name__}({values}, log_likelihood={self.log_likelihood_:.2f})"
        return f"{type(self).__name__}(penalizer={self.penalizer})"

    def _prepare(self, data: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
        """Data to predict for: the given rows (checked) or, by default, the fitted data."""
        self._fitted()
        if data is None:
            if getattr(self, "fitted_data_", None) is None:
                raise ValueError("No data given and none kept from fit")
            return self.fitted_data_
        check_data(data, columns)
        return data
