"""Cross-validated lambda: :class:`BoostNetClassifierCV` and :class:`BoostNetRegressorCV`.

Like scikit-learn's ``LassoCV``: one grid of lambdas from lambda_max (estimated on all the data)
down to ``alpha_min_ratio * lambda_max``; on each fold, one warm-started path over the grid scored on
the held-out part; the lambda with the best mean score (or the largest lambda within one standard
error of it, ``selection="1se"``) is refitted on all the data along a path that stops there. As
``LassoCV`` builds a ``Lasso``, the CV estimators build the plain estimator (same shared parameters,
one seed per fold) and use only its public ``alpha_grid`` and ``path``; the refit's fitted network
becomes theirs. The folds' paths only score lambdas: their points are certified by one pool at
``PATH_TOL`` (as ``alpha="auto"``'s path); the refit's path certifies at ``tol``.
"""

from __future__ import annotations

import inspect
import time
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import ClassifierMixin
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions

from .estimators import (
    CERTIFY_POOLS,
    SLIDE_STEPS,
    TOL,
    UNITS_PER_STEP,
    BoostNetClassifier,
    BoostNetRegressor,
    _BaseBoostNet,
    _generator,
    lambda_choice,
    parameters_doc,
)
from .io import register_model
from .pathwise import SELECTIONS, check_alphas, within_one_se

#: The plain estimators' parameters that a CV estimator does not have (it chooses lambda itself).
_NOT_CV = (
    "alpha",
    "alpha_ratio",
    "early_stopping",
    "validation_fraction",
    "n_iter_no_change",
    "warm_start",
    "path_patience",
)


def _fold_path(est, X, y, sw, train, test, alphas, classes):
    """One fold: the plain estimator's path over ``alphas`` on ``train``, scored on ``test``.

    Returns ``(criterion (n_alphas,), metric (n_alphas,), units (n_alphas,), seconds)``; lambdas
    the path did not reach (it was stopped) score NaN.
    """
    t0 = time.perf_counter()
    path = est.path(
        X[train], y[train], sw[train], alphas=alphas, X_val=X[test], y_val=y[test], classes=classes
    )
    scores = np.full(alphas.shape[0], np.nan)
    metric = np.full(alphas.shape[0], np.nan)
    units = np.full(alphas.shape[0], -1)
    for i, p in enumerate(path.points):
        scores[i], units[i] = p.val_score, p.n_units
        metric[i] = p.extra.get("val_metric", p.val_score)
    return scores, metric, units, time.perf_counter() - t0


class _CVMixin:
    """Shared machinery of the CV estimators (the grid, the folds, the choice, the refit)."""

    _cv_constraints: dict = {
        "alphas": ["array-like", None],
        "n_alphas": [Interval(Integral, 1, None, closed="left")],
        "alpha_min_ratio": [Interval(Real, 0, 1, closed="right")],
        "cv": ["cv_object"],
        "selection": [StrOptions(set(SELECTIONS))],
        "n_jobs": [Integral, None],
        "val_criterion": [StrOptions({"loss", "metric"})],
    }

    def __init__(
        self,
        *,
        alphas=None,
        n_alphas=20,
        alpha_min_ratio=1e-3,
        cv=5,
        selection="best",
        n_jobs=None,
        val_criterion="loss",
        activation="relu",
        penalty="auto",
        sampler="mixture",
        n_candidates=2048,
        top_k=32,
        refine=True,
        n_refine=1,
        refine_steps=10,
        units_per_step=UNITS_PER_STEP,
        certify_pools=CERTIFY_POOLS,
        slide_steps=SLIDE_STEPS,
        unit_scale=3.0,
        max_units=1000,
        max_time=None,
        tol=TOL,
        refit_tol=1e-6,
        refit_max_iter=200,
        dtype="float32",
        memory_budget_mb=512,
        random_state=None,
        device="auto",
        callbacks=None,
        corrective=True,
        oracle="auto",
    ):
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.cv = cv
        self.selection = selection
        self.n_jobs = n_jobs
        self.val_criterion = val_criterion
        self.activation = activation
        self.penalty = penalty
        self.sampler = sampler
        self.n_candidates = n_candidates
        self.top_k = top_k
        self.refine = refine
        self.n_refine = n_refine
        self.refine_steps = refine_steps
        self.units_per_step = units_per_step
        self.certify_pools = certify_pools
        self.slide_steps = slide_steps
        self.unit_scale = unit_scale
        self.max_units = max_units
        self.max_time = max_time
        self.tol = tol
        self.refit_tol = refit_tol
        self.refit_max_iter = refit_max_iter
        self.dtype = dtype
        self.memory_budget_mb = memory_budget_mb
        self.random_state = random_state
        self.device = device
        self.callbacks = callbacks
        self.corrective = corrective
        self.oracle = oracle

    def _plain(self, seed, callbacks=None):
        """The plain estimator with this one's shared parameters, seeded with ``seed``: each fold's
        path and the final refit are its public :meth:`~_BaseBoostNet.path`, as ``LassoCV``
        builds a ``Lasso``."""
        base = BoostNetClassifier if isinstance(self, ClassifierMixin) else BoostNetRegressor
        names = set(inspect.signature(base.__init__).parameters) - {"self"}
        params = {k: v for k, v in self.get_params(deep=False).items() if k in names}
        params.update(random_state=int(seed), callbacks=callbacks)
        return base(**params)

    def fit(self, X, y, sample_weight=None):
        """Choose lambda by K-fold cross-validation over the path, then refit on all the data.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) (or (n_samples, n_outputs) for the regressor)
        sample_weight : array-like, shape (n_samples,), optional
            Weights of the training loss (the fold scores are unweighted).
        """
        self._validate_params()
        X, y, _, _, sw = self._validate_xy(X, y, sample_weight, False)
        rng = _generator(self.random_state)
        t0 = time.perf_counter()
        cv = check_cv(self.cv, y, classifier=isinstance(self, ClassifierMixin))
        folds = list(cv.split(X, y))
        # seeds drawn up front: the same draws whatever n_jobs is
        seeds = rng.integers(2**31 - 1, size=len(folds) + 2)
        classes = getattr(self, "classes_", None) if isinstance(self, ClassifierMixin) else None
        if self.alphas is None:
            lam, alphas = self._plain(seeds[0]).alpha_grid(X, y, sw)
        else:
            lam, alphas = None, check_alphas(self.alphas)
        # the folds' paths only score lambdas (the final path certifies at ``tol``)
        fold = lambda_choice(self.tol)
        out = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_path)(
                self._plain(s).set_params(**fold), X, y, sw, tr, te, alphas, classes
            )
            for (tr, te), s in zip(folds, seeds[1:-1], strict=True)
        )
        self.cv_scores_ = np.array([o[0] for o in out])
        self.cv_metric_ = np.array([o[1] for o in out])
        self.cv_units_ = np.array([o[2] for o in out])
        self.cv_fit_times_ = np.array([o[3] for o in out])
        mean = np.nanmean(self.cv_scores_, axis=0)
        best = int(np.nanargmax(mean))
        if self.selection == "1se":
            k = np.sum(~np.isnan(self.cv_scores_[:, best]))
            se = np.nanstd(self.cv_scores_[:, best], ddof=1) / np.sqrt(k) if k > 1 else 0.0
            best = within_one_se(mean, best, se)
        # refit on all the data: the plain estimator's path down to the chosen lambda (warm starts
        # all the way); its fitted network becomes this estimator's
        final = self._plain(seeds[-1], self.callbacks)
        final.path(X, y, sw, alphas=alphas[: best + 1])
        self.__dict__.update({k: v for k, v in vars(final).items() if _fitted(k)})
        self.alphas_ = alphas
        self.best_index_ = best
        self.cv_mean_scores_ = mean
        self.alpha_ = float(alphas[best])
        self.lambda_max_ = lam if lam is not None else final.lambda_max_
        self.fit_time_ = time.perf_counter() - t0
        return self


def _fitted(name: str) -> bool:
    """A fitted attribute's name (scikit-learn's convention: a trailing underscore)."""
    return name.endswith("_") and not name.startswith("_")


_CV_DOC = """

    Parameters
    ----------
    alphas : array-like, default=None
        Lambdas to try (absolute). None: ``n_alphas`` from lambda_max (estimated on all the data)
        down to ``alpha_min_ratio * lambda_max``, geometrically spaced.
    n_alphas : int, default=20
    alpha_min_ratio : float in (0, 1], default=1e-3
    cv : int, cross-validation generator or iterable, default=5
        Folds (stratified for the classifier), as in scikit-learn's ``check_cv``. An integer gives
        unshuffled folds, like ``LassoCV``.
    selection : {"best", "1se"}, default="best"
        ``best``: the lambda with the best mean fold score. ``1se``: the largest lambda whose mean
        score is within one standard error of the best (a sparser network).
    n_jobs : int, default=None
        Folds run in parallel with joblib (each fold's scorer takes up to ``memory_budget_mb``).
    val_criterion : {"loss", "metric"}, default="loss"
        What the folds score: minus the held-out mean loss (log-loss or squared error, like
        glmnet's deviance), or the held-out metric (accuracy or R^2, coarse on small folds).
{shared}

    Attributes
    ----------
    alpha_ : float
        The chosen lambda.
    alphas_ : ndarray, shape (n_alphas,)
    cv_scores_ : ndarray, shape (n_folds, n_alphas)
        Held-out criterion of every fold at every lambda (higher is better).
    cv_metric_ : ndarray, shape (n_folds, n_alphas)
        Held-out accuracy (classifier) or R^2 (regressor).
    cv_mean_scores_ : ndarray, shape (n_alphas,)
    cv_units_ : ndarray, shape (n_folds, n_alphas)
    cv_fit_times_ : ndarray, shape (n_folds,)
        Seconds per fold's path.
    best_index_ : int
    path_ : PathResult
        The refit's path on all the data, from lambda_max down to ``alpha_``.
    hidden_weights_, hidden_bias_, coef_, intercept_, n_units_, stop_reason_, certificate_gap_
        The network at ``alpha_`` (as for the plain estimator).
    """


def _constraints():
    base = {k: v for k, v in _BaseBoostNet._parameter_constraints.items() if k not in _NOT_CV}
    return {**base, **_CVMixin._cv_constraints}


def _cv_doc() -> str:
    """The CV estimators' docstring: their own parameters, then the plain estimator's shared ones
    (from its docstring: one place documents them)."""
    own = set(_CVMixin._cv_constraints)
    shared = [k for k in inspect.signature(_CVMixin.__init__).parameters][1:]
    return _CV_DOC.replace("{shared}", parameters_doc([k for k in shared if k not in own]))


@register_model
class BoostNetClassifierCV(_CVMixin, BoostNetClassifier):
    __doc__ = "BoostNetClassifier with lambda chosen by cross-validation over the path." + _cv_doc()
    _parameter_constraints = _constraints()


@register_model
class BoostNetRegressorCV(_CVMixin, BoostNetRegressor):
    __doc__ = "BoostNetRegressor with lambda chosen by cross-validation over the path." + _cv_doc()
    _parameter_constraints = _constraints()


__all__ = ["BoostNetClassifierCV", "BoostNetRegressorCV"]
