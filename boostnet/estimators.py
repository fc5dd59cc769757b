"""scikit-learn estimators: :class:`BoostNetClassifier` and :class:`BoostNetRegressor`."""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._backend import DEVICES, resolve_device, to_numpy
from ._greedy import GreedyConfig, GreedyResult, estimate_lambda_max, fit_greedy
from .activations import ACTIVATIONS, get_activation
from .datafits import Logistic, SoftmaxCrossEntropy, SquaredError
from .exceptions import ConfigError, DataError
from .export import to_mlp
from .io import register_model, save_model
from .metrics import r2_rows
from .network import NetworkState, raw_output
from .oracle import ORACLES, resolve_oracle
from .pathwise import SELECTIONS, alpha_grid, check_alphas, compute_path
from .penalties import PENALTIES, resolve_penalty
from .samplers import SAMPLERS, get_sampler
from .scorers import make_scorer
from .scoring import transform
from .targets import infer_task

#: Default lambda as a fraction of lambda_max. Chosen by measurement on the bundled data sets
#: (experiments/choose_alpha.py): see docs/python-api.md, "Choosing lambda".
DEFAULT_ALPHA_RATIO = 0.0075
#: Default of ``path_patience`` (measured: experiments/speed_suite.py --ablation path_patience=2,5).
PATH_PATIENCE = 2
#: Certificate tolerance of the points of ``alpha="auto"``'s path (measured:
#: experiments/speed_suite.py and path_bench.py, see docs/python-api.md "Choosing lambda"). The path
#: only chooses lambda and the final fit certifies at ``tol``: a point is certified when one pool
#: finds no unit above ``lambda (1 + PATH_TOL)``.
PATH_TOL = 0.25
#: Default of ``tol`` (measured: experiments/certificate_audit.py --ablation tol=...).
TOL = 1e-2
#: Default of ``certify_pools`` (measured: experiments/certificate_audit.py).
CERTIFY_POOLS = 3
#: Default of ``units_per_step`` (measured: experiments/speed_suite.py --ablation).
UNITS_PER_STEP = 8
#: Default of ``slide_steps`` (measured: experiments/speed_suite.py --ablation slide_steps=0,1,3,5).
SLIDE_STEPS = 3


def lambda_choice(tol: float) -> dict:
    """The certificate of a path that only chooses lambda (``alpha="auto"``'s path, the CV folds'):
    one clean pool at ``max(tol, PATH_TOL)``, as estimator parameters (also ``GreedyConfig``
    fields)."""
    return {"tol": max(tol, PATH_TOL), "certify_pools": 1}


def _check_signal(X, Y, sw, classifier: bool):
    """Raise :class:`DataError` where no hidden unit can fit anything.

    If every feature is constant over the rows of positive weight, so is every unit's activation
    ``h = act(X v + c)``, and its score ``dual_norm(h^T G)`` vanishes at the intercept's optimum
    (``1^T G = 0``); if the encoded targets are constant, the intercept alone fits them exactly
    (``G = 0``). Either way ``lambda_max`` is rounding noise, and a lambda proportional to it would
    grow units that fit nothing: the data are refused with the reason instead.
    """
    live = sw > 0
    if int(live.sum()) < 2:
        return
    if live.all():  # (no copies of the rows where every one counts)
        live = slice(None)
    if not np.ptp(X[live], axis=0).any():
        raise DataError(
            f"every feature is constant over the {Y[live].shape[0]} training samples: no hidden "
            "unit can fit the targets"
        )
    if not np.ptp(Y[live], axis=0).any():
        raise DataError(
            "only one class has samples of positive weight; classification needs at least 2 classes"
            if classifier
            else "the target is constant over the training samples: the intercept alone fits "
            "it, there is nothing for hidden units to learn"
        )


def _check_range(X, activation: str):
    """Raise :class:`DataError` where relu units' activations would overflow the re-fit.

    A relu unit on the unit sphere reaches ``|h_t| <= ||[x_t, 1]||``, unbounded; the re-fit's
    curvature model holds weighted sums of ``h^2`` in float32 (:class:`boostnet.refit.CurvatureModel`),
    so rows whose squared norm nears float32's largest number give infinite curvatures, and the
    fit used to end "stalled" with no unit (rows of ~1e20). Bounded activations never get there.
    """
    if activation != "relu" or X.size == 0:
        return
    limit = math.sqrt(float(np.finfo(np.float32).max) / 16)
    top = float(np.max(np.abs(X)))
    if top < limit:  # no square of these overflows float64: the rows' norms as they are
        norm = math.sqrt(float(np.max(np.einsum("ij,ij->i", X, X)))) + 1.0
    else:  # refused anyway; the norm for the message, scaled so that no square overflows
        Xs = X / top
        norm = top * math.sqrt(float(np.max(np.einsum("ij,ij->i", Xs, Xs)))) + 1.0
    if not norm < limit:
        raise DataError(
            f"the rows of X reach a norm of {norm:.3g}, beyond what the float32 re-fit can square "
            f"(relu units' activations are as large; up to {limit:.3g}): standardise the features"
        )


class _BaseBoostNet(TransformerMixin, BaseEstimator):
    """Shared machinery of the classifier and the regressor."""

    _parameter_constraints: dict = {
        "activation": [StrOptions(set(ACTIVATIONS))],
        "penalty": [StrOptions(set(PENALTIES) | {"auto"})],
        "alpha": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto", "ratio"}), None],
        "n_alphas": [Interval(Integral, 1, None, closed="left")],
        "alpha_min_ratio": [Interval(Real, 0, 1, closed="right")],
        "path_patience": [Interval(Integral, 1, None, closed="left"), None],
        "val_criterion": [StrOptions({"loss", "metric"})],
        "selection": [StrOptions(set(SELECTIONS)), None],
        "alpha_ratio": [Interval(Real, 0, 1, closed="right")],
        "sampler": [StrOptions(set(SAMPLERS)), HasMethods(["sample"])],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "refine": ["boolean"],
        "n_refine": [Interval(Integral, 0, None, closed="left")],
        "units_per_step": [Interval(Integral, 1, None, closed="left")],
        "slide_steps": [Interval(Integral, 0, None, closed="left")],
        "certify_pools": [Interval(Integral, 1, None, closed="left")],
        "refine_steps": [Interval(Integral, 0, None, closed="left")],
        "unit_scale": [Interval(Real, 0, None, closed="neither")],
        "max_units": [Interval(Integral, 0, None, closed="left")],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "refit_tol": [Interval(Real, 0, None, closed="neither")],
        "refit_max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float16", "float32", "float64"})],
        "memory_budget_mb": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "device": [StrOptions(set(DEVICES)), None],
        "warm_start": ["boolean"],
        "corrective": ["boolean"],
        "oracle": [StrOptions(set(ORACLES))],
        "callbacks": [list, tuple, None],
    }

    def __init__(
        self,
        *,
        activation="relu",
        penalty="auto",
        alpha=None,
        alpha_ratio=DEFAULT_ALPHA_RATIO,
        n_alphas=20,
        alpha_min_ratio=1e-3,
        path_patience=PATH_PATIENCE,
        val_criterion="loss",
        selection=None,
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
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        dtype="float32",
        memory_budget_mb=512,
        random_state=None,
        device="auto",
        warm_start=False,
        callbacks=None,
        corrective=True,
        oracle="auto",
    ):
        self.activation = activation
        self.penalty = penalty
        self.alpha = alpha
        self.alpha_ratio = alpha_ratio
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.path_patience = path_patience
        self.val_criterion = val_criterion
        self.selection = selection
        self.sampler = sampler
        self.n_candidates = n_candidates
        self.top_k = top_k
        self.refine = refine
        self.n_refine = n_refine
        self.refine_steps = refine_steps
        self.units_per_step = units_per_step
        self.slide_steps = slide_steps
        self.certify_pools = certify_pools
        self.unit_scale = unit_scale
        self.max_units = max_units
        self.max_time = max_time
        self.tol = tol
        self.refit_tol = refit_tol
        self.refit_max_iter = refit_max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.memory_budget_mb = memory_budget_mb
        self.random_state = random_state
        self.device = device
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.corrective = corrective
        self.oracle = oracle

    # ---- hooks of the subclasses ------------------------------------------------------------
    def _encode_targets(self, y):
        """Return ``(Y (n, K) float64, datafit)`` and set target attributes."""
        raise NotImplementedError

    def _validation_rows(self, F, Y):
        """The validation metric (higher is better: accuracy or R^2) of raw predictions F (n, K)
        against encoded targets Y, as per-row terms (n,) whose mean is the metric."""
        raise NotImplementedError

    # ---- fit --------------------------------------------------------------------------------
    def _validate_xy(self, X, y, sample_weight, warm, classes=None):
        """Validated ``X`` (n, d) float64, ``y``, encoded ``Y`` (n, K), the datafit and the sample
        weights (n,). ``warm``: a warm start (the fitted classes and features stay); ``classes``:
        the classifier's classes, given (``y`` may lack some)."""
        multi = isinstance(self, RegressorMixin)
        X, y = validate_data(
            self, X, y, dtype=np.float64, multi_output=multi, y_numeric=multi, reset=not warm
        )
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(sw < 0):
            raise DataError("sample_weight must be non-negative")
        if not sw.sum() > 0:
            raise DataError("sample_weight must have a positive sum")
        if classes is not None:
            self.classes_ = np.unique(np.asarray(classes))
            if self.classes_.shape[0] < 2:
                raise DataError("classes must hold at least 2 classes")
        if isinstance(self, ClassifierMixin) and (classes is not None or warm):
            # the classes are known (given, or the first fit's): y may lack some, not add any
            check_classification_targets(y)
            if not np.all(np.isin(np.unique(y), self.classes_)):
                raise DataError(
                    "y has labels that are not among the given classes"
                    if classes is not None
                    else "warm_start: y has classes not seen in the first fit"
                )
            Y, datafit = self._encode_known(y)
        else:
            Y, datafit = self._encode_targets(y)
        _check_signal(X, Y, sw, isinstance(self, ClassifierMixin))
        _check_range(X, self.activation)
        return X, y, Y, datafit, sw

    def _scorer(self, X, xp):
        return make_scorer(
            xp.asarray(X), dtype=self.dtype, memory_budget=int(self.memory_budget_mb * 2**20)
        )

    def _config(self, alpha, datafit, alpha_ratio=DEFAULT_ALPHA_RATIO) -> GreedyConfig:
        return GreedyConfig(
            activation=get_activation(self.activation),
            penalty=resolve_penalty(self.penalty, datafit.shift_invariant),
            alpha=alpha,
            alpha_ratio=alpha_ratio,
            n_candidates=self.n_candidates,
            top_k=self.top_k,
            refine=self.refine,
            n_refine=self.n_refine,
            refine_steps=self.refine_steps,
            units_per_step=self.units_per_step,
            certify_pools=self.certify_pools,
            slide_steps=self.slide_steps,
            unit_scale=self.unit_scale,
            max_units=self.max_units,
            max_time=self.max_time,
            tol=self.tol,
            refit_tol=self.refit_tol,
            refit_max_iter=self.refit_max_iter,
            n_iter_no_change=getattr(self, "n_iter_no_change", 10),
            corrective=self.corrective,
            oracle=self.oracle,
        )

    def _metric_of(self, X, Y, xp, datafit=None, rows=False):
        """``f(state)`` (higher is better) of a network on (X, Y), any device: the validation
        metric (accuracy or R^2), or with ``datafit`` minus the mean loss. With ``rows``, its
        per-row terms (a host array, shape (n,), whose mean is the figure: a path takes the
        figure's standard error from them)."""
        act = get_activation(self.activation)
        Xd, Yd = xp.asarray(X), xp.asarray(Y)

        def metric(state):
            F = raw_output(Xd, state, act)
            if datafit is not None:
                terms = -to_numpy(datafit.row_values(Yd, F))
            else:
                terms = self._validation_rows(to_numpy(F), to_numpy(Yd))
            return terms if rows else float(terms.mean())

        return metric

    def _path_validation(self, X, Y, xp, datafit):
        """``(criterion, extra scores)`` for a path scored on held-out (X, Y); the criterion
        gives per-row terms (the path records their mean and its standard error)."""
        metric = self._metric_of(X, Y, xp)
        if self.val_criterion == "loss":
            return self._metric_of(X, Y, xp, datafit, rows=True), {"val_metric": metric}
        return self._metric_of(X, Y, xp, rows=True), {
            "val_loss": lambda st: -self._metric_of(X, Y, xp, datafit)(st)
        }

    def _holdout(self, X, y, Y, sw, rng):
        """Split off ``validation_fraction`` of the rows: ``(train_idx, val_idx)``.

        Stratified for classifiers when every class has two members and both parts can hold every
        class (the held-out part is enlarged to one row per class if needed).
        """
        n = X.shape[0]
        n_val = max(int(np.ceil(self.validation_fraction * n)), 1)
        strat = None
        if isinstance(self, ClassifierMixin):
            _, counts = np.unique(y, return_counts=True)
            k = counts.shape[0]
            if counts.min() >= 2 and n - max(n_val, k) >= k:
                strat, n_val = y, max(n_val, k)
        if n_val >= n:
            raise DataError(f"cannot hold out a validation split from {n} samples")
        return train_test_split(
            np.arange(n),
            test_size=n_val,
            random_state=int(rng.integers(2**31 - 1)),
            stratify=strat,
        )

    def _setup(self, X, y, sample_weight, warm=False, classes=None) -> _Setup:
        """The one set-up of :meth:`fit`, :meth:`path` and :meth:`alpha_grid`: parameters and
        data validated, targets encoded, the generator, device and sampler resolved."""
        self._validate_params()
        X, y, Y, datafit, sw = self._validate_xy(X, y, sample_weight, warm, classes)
        backend = resolve_device(self.device, n_rows=X.shape[0])
        return _Setup(
            X, y, Y, datafit, sw, _generator(self.random_state), backend, backend.xp,
            get_sampler(self.sampler),
        )  # fmt: skip

    def _fit(self, X, y, sample_weight=None):
        warm = self.warm_start and hasattr(self, "hidden_weights_")
        s = self._setup(X, y, sample_weight, warm)
        X, y, Y, datafit, sw = s.X, s.y, s.Y, s.datafit, s.sw
        rng, backend, xp, sampler = s.rng, s.backend, s.xp, s.sampler
        callbacks = self.callbacks or ()
        rule = self._alpha_rule()
        auto = rule == "auto" and not warm
        if rule == "auto" and self.early_stopping:
            raise ConfigError(
                "alpha='auto' and early_stopping both hold out a validation split; use one"
            )
        t0 = time.perf_counter()

        validation = None
        if self.early_stopping:
            idx_tr, idx_va = self._holdout(X, y, Y, sw, rng)
            validation = self._metric_of(X[idx_va], Y[idx_va], xp)
            X, Y, sw = X[idx_tr], Y[idx_tr], sw[idx_tr]

        init, alpha, path = None, None if rule in ("ratio", "auto") else rule, None
        if warm:
            init = NetworkState(
                xp.asarray(self.hidden_weights_),
                xp.asarray(self.hidden_bias_),
                xp.asarray(self.coef_),
                xp.asarray(self.intercept_),
            )
            alpha = rule if rule not in ("ratio", "auto") else self.alpha_
        elif auto:
            path = self._auto_path(X, y, Y, sw, datafit, sampler, rng, xp, callbacks)
            best = path.best_index(self.selection or self._default_selection)
            alpha = path.points[best].alpha
            net = path.network(best)
            init = NetworkState(*(xp.asarray(v) for v in (net.W, net.c, net.coef, net.intercept)))
        a = sw / sw.sum()
        config = self._config(alpha, datafit, self.alpha_ratio)
        self.penalty_ = config.penalty
        self.oracle_ = resolve_oracle(self.oracle, X.shape[1], config.activation, X.shape[0])
        if path is not None and path.stop_reason in ("interrupted", "callback"):
            # the path was stopped: keep the best network found so far, without the final fit
            result = GreedyResult(init, alpha, path.lambda_max, path.stop_reason, [], 0)
        else:
            result = fit_greedy(
                self._scorer(X, xp),
                xp.asarray(Y),
                xp.asarray(a),
                datafit,
                sampler,
                config,
                rng,
                init=init,
                validation=validation,
                callbacks=callbacks,
            )
        if path is not None:
            self.path_ = path
            self.alphas_ = path.alphas
            result.lambda_max = path.lambda_max
        self._set_result(result, X.shape[1], Y.shape[1], backend.name, warm, t0)
        return self

    #: What ``alpha=None`` means for this estimator (see the ``alpha`` parameter).
    _default_alpha = "ratio"
    #: What ``selection=None`` means for this estimator (see the ``selection`` parameter).
    _default_selection = "best"

    def _alpha_rule(self):
        """lambda's rule: a float, ``"ratio"`` (alpha_ratio * lambda_max) or ``"auto"``."""
        if self.alpha is None:
            return "ratio" if self.early_stopping else self._default_alpha
        return self.alpha

    def _grid(self, alphas, scorer, Y, a, datafit, sampler, config, rng):
        """The path's lambdas: ``alphas`` sorted, or ``n_alphas`` from lambda_max (estimated on
        the scorer's data) down to ``alpha_min_ratio * lambda_max``. Returns ``(lambda_max or
        None, grid)``."""
        if alphas is not None:
            return None, check_alphas(alphas)
        lam = estimate_lambda_max(scorer, Y, a, datafit, sampler, config, rng)
        return lam, alpha_grid(lam, self.n_alphas, self.alpha_min_ratio)

    def _adopt_path(self, path, device, t0):
        """Fitted attributes from a computed path: ``path_`` and its last point's network."""
        self.path_ = path
        self.device_ = device
        self.use_point(len(path.points) - 1)
        self.fit_time_ = time.perf_counter() - t0
        self.n_candidates_searched_ = sum(p.n_candidates for p in path.points)
        self.n_iter_ = sum(p.n_steps for p in path.points)

    def _auto_path(self, X, y, Y, sw, datafit, sampler, rng, xp, callbacks):
        """``alpha='auto'``: one path on a training part, scored on the held-out part."""
        idx_tr, idx_va = self._holdout(X, y, Y, sw, rng)
        scorer = self._scorer(X[idx_tr], xp)
        Ytr = xp.asarray(Y[idx_tr])
        a = xp.asarray(sw[idx_tr] / sw[idx_tr].sum())
        # the path only chooses lambda (the final fit certifies at it at ``tol``): one clean pool
        # per point, at a looser tolerance (the held-out scores barely move, the path's last,
        # densest points cost a third)
        config = dataclasses.replace(self._config(None, datafit), **lambda_choice(self.tol))
        lam, alphas = self._grid(None, scorer, Ytr, a, datafit, sampler, config, rng)
        validation, extra = self._path_validation(X[idx_va], Y[idx_va], xp, datafit)
        return compute_path(
            scorer,
            Ytr,
            a,
            datafit,
            sampler,
            config,
            rng,
            alphas,
            lambda_max=lam,
            validation=validation,
            scores=extra,
            patience=self.path_patience,
            callbacks=[cb for cb in callbacks if hasattr(cb, "on_path_point")],
        )

    def _set_network(self, net, n_features: int, K: int):
        """The one place that sets the fitted network: ``hidden_weights_`` (m, d),
        ``hidden_bias_`` (m,), ``coef_`` (m, K), ``intercept_`` (K,) and ``n_units_``, as host
        float64 copies of ``net`` (a :class:`NetworkState` or a path point's network, any device)."""
        self.hidden_weights_ = np.array(to_numpy(net.W), dtype=np.float64).reshape(-1, n_features)
        self.hidden_bias_ = np.array(to_numpy(net.c), dtype=np.float64).ravel()
        self.coef_ = np.array(to_numpy(net.coef), dtype=np.float64).reshape(-1, K)
        self.intercept_ = np.array(to_numpy(net.intercept), dtype=np.float64).ravel()
        self.n_units_ = int(self.hidden_weights_.shape[0])

    def _set_result(self, result, n_features, K, device, warm, t0):
        """Fitted attributes (NumPy) from a :class:`GreedyResult`."""
        st = result.state
        self._set_network(st, n_features, K)
        self.alpha_ = result.alpha
        if result.lambda_max is not None:
            self.lambda_max_ = result.lambda_max
        elif not hasattr(self, "lambda_max_"):
            self.lambda_max_ = None
        self.stop_reason_ = result.stop_reason
        self.certificate_ = result.certificate.as_dict() if result.certificate else None
        self.history_ = list(getattr(self, "history_", []) if warm else []) + result.history
        self.n_candidates_searched_ = result.total_candidates
        last = result.history[-1] if result.history else None
        self.certificate_gap_ = (
            last.certificate_gap if last is not None and not last.added else None
        )
        self.device_ = device
        self.fit_time_ = time.perf_counter() - t0
        self.n_iter_ = max(len(result.history) - 1, 0)

    def alpha_grid(self, X, y, sample_weight=None):
        """The lambdas :meth:`path` walks on (X, y) when it is given none: ``n_alphas`` from
        lambda_max (the best score of one searched pool at the intercept-only model) down to
        ``alpha_min_ratio * lambda_max``, geometrically spaced.

        Returns
        -------
        lambda_max : float
        alphas : ndarray, shape (n_alphas,), decreasing
        """
        s = self._setup(X, y, sample_weight)
        xp = s.xp
        return self._grid(
            None, self._scorer(s.X, xp), xp.asarray(s.Y), xp.asarray(s.sw / s.sw.sum()), s.datafit,
            s.sampler, self._config(None, s.datafit), s.rng,
        )  # fmt: skip

    def path(self, X, y, sample_weight=None, *, alphas=None, X_val=None, y_val=None, classes=None):
        """Compute the regularisation path on (X, y): certified networks for decreasing lambdas,
        each warm-started from the previous one.

        The grid is ``alphas`` if given, else ``n_alphas`` lambdas from lambda_max (estimated on
        (X, y)) down to ``alpha_min_ratio * lambda_max``. The estimator is left fitted at the last
        point; ``path_`` holds every point (``path_.network(i)`` rebuilds one, :meth:`use_point`
        makes it the estimator's network).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like, shape (n_samples,), optional
        alphas : array-like, optional
            Lambdas (absolute); sorted into decreasing order.
        X_val, y_val : array-like, optional
            Held-out data: each point records its validation metric (accuracy or R^2).
        classes : array-like, optional
            Classifier: every class of the problem, when ``y`` may lack some (a cross-validation
            fold); they all get an output. None: the classes of ``y``.

        Returns
        -------
        PathResult
        """
        if classes is not None and not isinstance(self, ClassifierMixin):
            raise ConfigError("classes is for classifiers")
        s = self._setup(X, y, sample_weight, classes=classes)
        X, y, Y, datafit, sw = s.X, s.y, s.Y, s.datafit, s.sw
        rng, backend, xp, sampler = s.rng, s.backend, s.xp, s.sampler
        t0 = time.perf_counter()
        scorer = self._scorer(X, xp)
        Yd, a = xp.asarray(Y), xp.asarray(sw / sw.sum())
        config = self._config(None, datafit)
        self.penalty_ = config.penalty
        self.oracle_ = resolve_oracle(self.oracle, X.shape[1], config.activation, X.shape[0])
        validation, extra = None, None
        if (X_val is None) != (y_val is None):
            raise DataError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_val = validate_data(self, X_val, dtype=np.float64, reset=False)
            if isinstance(self, ClassifierMixin) and not np.all(
                np.isin(np.unique(y_val), self.classes_)
            ):
                raise DataError("y_val has classes not seen in y")
            Yv = self._encode_known(np.asarray(y_val))[0]
            if Yv.shape[0] != X_val.shape[0]:
                raise DataError(f"X_val has {X_val.shape[0]} rows but y_val has {Yv.shape[0]}")
            validation, extra = self._path_validation(X_val, Yv, xp, datafit)
        lam, grid = self._grid(alphas, scorer, Yd, a, datafit, sampler, config, rng)
        path = compute_path(
            scorer,
            Yd,
            a,
            datafit,
            sampler,
            config,
            rng,
            grid,
            lambda_max=lam,
            validation=validation,
            train_score=self._metric_of(X, Y, xp),
            scores=extra,
            callbacks=self.callbacks or (),
        )
        self.alphas_ = path.alphas
        self._adopt_path(path, backend.name, t0)
        return path

    def use_point(self, i: int):
        """Make point ``i`` of ``path_`` the estimator's network (its lambda becomes ``alpha_``)."""
        check_is_fitted(self, "path_")
        p = self.path_.points[i]
        net = self.path_.network(i)
        self._set_network(net, net.W.shape[1], net.coef.shape[1])
        self.alpha_ = p.alpha
        self.lambda_max_ = self.path_.lambda_max
        self.stop_reason_ = p.stop_reason
        self.certificate_gap_ = p.certificate_gap
        self.certificate_ = p.certificate
        self.history_ = []
        return self

    def _encode_known(self, y):
        raise NotImplementedError

    # ---- prediction -------------------------------------------------------------------------
    def _raw(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        net = NetworkState(self.hidden_weights_, self.hidden_bias_, self.coef_, self.intercept_)
        return raw_output(X, net, get_activation(self.activation))

    def transform(self, X):
        """Hidden activations ``act(X W^T + c)`` of the fitted units.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        H : ndarray, shape (n_samples, n_units)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return transform(
            X, self.hidden_weights_, self.hidden_bias_, get_activation(self.activation)
        )

    def to_mlp(self):
        """The network as a fitted scikit-learn ``MLPClassifier`` / ``MLPRegressor``.

        One hidden layer with the same units (relu, tanh, sigmoid = logistic), output weights and
        intercept; ``predict`` and ``predict_proba`` give this estimator's results up to rounding.
        See :func:`boostnet.export.to_mlp`.

        Returns
        -------
        MLPClassifier or MLPRegressor

        Raises
        ------
        ConfigError
            Sign units: an MLP has no sign activation.
        """
        return to_mlp(self)

    def save(self, path):
        """Save the fitted model as one ``.npz`` file holding its arrays and JSON metadata."""
        return save_model(self, path)


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    return np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))


@dataclasses.dataclass
class _Setup:
    """What a fit or a path starts from (:meth:`_BaseBoostNet._setup`)."""

    X: np.ndarray  # (n, d) float64
    y: np.ndarray
    Y: np.ndarray  # (n, K) encoded targets
    datafit: object
    sw: np.ndarray  # (n,) sample weights
    rng: np.random.Generator
    backend: object
    xp: object
    sampler: object


@register_model
class BoostNetClassifier(ClassifierMixin, _BaseBoostNet):
    """Single-hidden-layer network grown by greedy unit selection (classification).

    Binary targets use the logistic loss (K = 1 output), more classes the softmax cross-entropy
    (K = n_classes outputs). The objective is ``mean loss + alpha * Omega(output weights)``.

    Parameters
    ----------
    activation : {"relu", "sigmoid", "tanh", "sign"}, default="relu"
    penalty : {"l1", "group_l1", "auto"}, default="auto"
        ``l1``: elementwise ``||W||_1``. ``group_l1``: one L2 norm per unit over its K outputs.
        ``auto``: ``group_l1`` for more than two classes (units shared by the classes: measured
        faster, with fewer units, at the MLP's accuracy, experiments/speed_suite.py), else ``l1``
        (for K = 1 output the two coincide). The penalty used is ``penalty_``.
    alpha : float, "ratio", "auto" or None, default=None
        lambda. A float: absolute. ``"ratio"``: ``alpha_ratio * lambda_max``. ``"auto"``: hold out
        ``validation_fraction`` of the data (stratified), compute the regularisation path on the
        rest (``n_alphas`` lambdas from lambda_max down to ``alpha_min_ratio * lambda_max``, each
        warm-started from the previous, each certified by one pool at ``PATH_TOL``), pick the
        lambda with the best held-out ``val_criterion``, then continue from that network on all
        the data to its certificate (at ``tol``).
        None: the estimator's default, ``"ratio"`` for the classifier and ``"auto"`` for the
        regressor (measured: docs/python-api.md, "Choosing lambda"); ``"ratio"`` with
        ``early_stopping``.
    alpha_ratio : float in (0, 1], default=0.0075
        lambda as a fraction of lambda_max (the best score at the intercept-only model), scale-free.
        lambda_max is read from a first pool searched as the certificate's tail searches (16
        candidates refined by 30 ascent steps): the same value, to 5 digits, whatever the seed or
        device draws (``boostnet._greedy.lambda_max_config``).
    n_alphas : int, default=20
        Lambdas on the path's grid (``alpha="auto"`` and :meth:`path`).
    alpha_min_ratio : float in (0, 1], default=1e-3
        Smallest lambda of the grid, as a fraction of lambda_max.
    path_patience : int or None, default=2
        ``alpha="auto"``: stop the path once the held-out criterion has not improved for this many
        lambdas (None: the whole grid). Measured (experiments/speed_suite.py --ablation
        path_patience=2,5): the same choice on diabetes and friedman1, in 0.35x and 0.67x the time.
    val_criterion : {"loss", "metric"}, default="loss"
        What chooses lambda on held-out data: the mean loss (log-loss or squared error), or the
        metric (accuracy or R^2; coarse on small held-out sets).
    selection : {"best", "1se"} or None, default=None
        ``alpha="auto"``: which lambda of the path is chosen. ``"best"``: the best held-out
        ``val_criterion``. ``"1se"``: the largest lambda whose held-out score is within one
        standard error of the best (the standard error of the best point's mean over the
        held-out rows; glmnet's ``lambda.1se``): a sparser network, cheaper to certify, that
        the held-out rows cannot tell from the best. None: the estimator's default, ``"best"``
        for the classifier and ``"1se"`` for the regressor (measured: docs/python-api.md,
        "Choosing lambda").
    sampler : {"mixture", "random", "pairs"} or sampler object, default="mixture"
        How each step's fresh pool of candidates is drawn. A sampler object has
        ``sample(X, G, m, rng, activation, unit_scale) -> (W, c)`` and may have ``draw`` (the
        same, plus which units are data pairs: :class:`boostnet.samplers.PairRows`).
    n_candidates : int, default=2048
        Pool size per step.
    top_k : int, default=32
        Candidates re-scored exactly (float64) after the screen.
    refine : bool, default=True
        Improve the best candidates by projected gradient ascent on their score.
    n_refine, refine_steps : int, default=1, 10
        How many of the best candidates are refined, and by how many ascent steps.
    units_per_step : int, default=8
        Most units added per step: the best distinct candidates of the step's pool that score
        above ``alpha (1 + tol)`` (a candidate whose activations correlate above 0.95 with a better
        one is skipped); one re-fit then decides which keep a non-zero weight.
    certify_pools : int, default=3
        Consecutive fresh pools (each with its ascent) that must find no unit scoring above
        ``alpha (1 + tol)``, at a tight re-fit, before the fit stops with a certificate (measured:
        experiments/certificate_audit.py). The evidence is in ``certificate_``.
    slide_steps : int, default=3
        Before each re-fit that adds units, the active units take up to this many projected
        gradient steps on the objective at fixed output weights (``boostnet.slide``), so that they
        follow the optimum instead of being replaced by nearby units. In the certification tail
        (the pools after the first clean one) the slide may take more steps, as many as the
        tail's harder search costs beyond the re-fit's curvature model, at most 16
        (``StepRecord.slide_steps`` records them). 0: units stay where they entered. Ignored for
        sign units, the stagewise re-fit and a fixed dictionary.
    unit_scale : float, default=3.0
        Bound R on ``||(v, c)||_2`` for sigmoid and tanh units (relu and sign units have norm 1).
    max_units : int, default=1000
    max_time : float, default=None
        Seconds; the loop stops after the step that crosses it.
    tol : float, default=1e-2
        Certificate tolerance: a pool is clean when its best score <= alpha (1 + tol). Measured
        (experiments/certificate_audit.py): with the default ``certify_pools``, a 16x stronger
        search continued from the certified fit lowers its objective by at most 0.31 % on digits,
        wine and breast-cancer at 1e-2 (0.03 % at 1e-3, for 2-3x the fit time on digits).
    refit_tol : float, default=1e-6
        Relative duality-gap tolerance of the re-fit that a certificate is issued at (while the
        best score is far above lambda, the loop re-fits more loosely, down to 1e-3).
    refit_max_iter : int, default=200
        Proximal Newton iterations per re-fit at most.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` (stratified) and stop when its accuracy has not improved for
        ``n_iter_no_change`` steps; the best model is kept.
    validation_fraction : float, default=0.1
        Share held out by ``early_stopping`` and by ``alpha="auto"``.
    n_iter_no_change : int, default=10
    dtype : {"float16", "float32", "float64"}, default="float32"
        Screening precision (the top-k are always re-scored in float64). On the GPU, ``float32``
        screens with TF32 tensor cores and ``float16`` with FP16 ones; on the CPU ``float16``
        screens in float32.
    memory_budget_mb : float, default=512
        Memory for the CPU scorer: its activation buffer and, with 128 features or more, the training
        rows' Gram matrix ``X X^T`` when it fits (n <= ~11 000 rows at the default; the data-pair
        candidates are then screened from it, :mod:`boostnet.scoring`). The GPU scorer sizes its
        chunks from free device memory.
    random_state : int, RandomState, Generator or None
    device : {"auto", "cpu", "gpu"} or None, default="auto"
        None reads the ``BOOSTNET_DEVICE`` environment variable. ``"auto"``: the GPU where CuPy
        finds one and the training set has at least ``boostnet._backend.AUTO_GPU_MIN_ROWS`` (5000)
        rows (below that a GPU fit is slower than a CPU one), else the CPU.
    warm_start : bool, default=False
        Continue from the fitted units (same lambda) instead of starting over.
    callbacks : list, default=None
        Objects with ``on_fit_begin(info)``, ``on_step_network(record, network)``,
        ``on_step_end(record)`` (return True or a reason to stop), ``on_fit_end(result)`` (None if
        the fit raised).
    corrective : bool, default=True
        Re-fit every output weight after each added unit (totally corrective). False fits only the
        new unit's weights and the intercept (plain stagewise boosting, an ablation): the stop
        rule then no longer certifies the objective.
    oracle : {"auto", "sampled", "certify", "exact"}, default="auto"
        How each step finds its best unit: ``"sampled"`` searches the drawn pool (the certificate
        holds over the pools searched); ``"exact"`` also adds the best of *all* units, found by an
        arrangement sweep (``boostnet.oracle``; sign or relu units and at most 2 features only),
        which makes the certificate global; ``"certify"`` runs that search only where the pool
        alone would certify (growing steps cost what sampled ones do; the certificate is still
        global); ``"auto"`` is ``"certify"`` where it applies and n <= 1000, else ``"sampled"``.

    Attributes
    ----------
    hidden_weights_ : ndarray, shape (n_units, n_features)
    hidden_bias_ : ndarray, shape (n_units,)
    coef_ : ndarray, shape (n_units, K)
        Output weights.
    intercept_ : ndarray, shape (K,)
    n_units_ : int
    alpha_ : float
        lambda used.
    penalty_ : str
        The penalty used (``penalty`` with ``"auto"`` resolved).
    oracle_ : str
        The oracle used: ``"exact"``, ``"certify"`` or ``"sampled"`` (``"auto"`` resolved).
    lambda_max_ : float or None
        Estimated lambda_max (best pool score at the intercept-only model).
    history_ : list of StepRecord
    stop_reason_ : str
        ``certificate``, ``max_units``, ``max_time``, ``early_stopping``, ``callback``, ``interrupted``.
    certificate_gap_ : float or None
        Best score minus alpha at the final model, when the last step searched it.
    certificate_ : dict or None
        The evidence behind a ``"certificate"`` stop (None otherwise): ``kind`` (``"sampled"``,
        or ``"exact"`` when every certifying pool held the exact search), ``pools`` and
        ``candidates`` searched at the final network without finding a unit above
        ``alpha (1 + tol)``, their ``best_score``, ``alpha``, ``tol``, and the re-fit's relative
        (``refit_gap``) and absolute (``duality_gap``) duality gap.
    n_candidates_searched_ : int
    path_ : PathResult
        After ``alpha="auto"`` (the path on the training part, with held-out scores) or
        :meth:`path`.
    alphas_ : ndarray, shape (n_alphas,)
        The path's grid.
    classes_ : ndarray, shape (n_classes,)
    n_features_in_ : int
    device_ : str
    fit_time_ : float
    """

    def fit(self, X, y, sample_weight=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
        sample_weight : array-like, shape (n_samples,), optional
        """
        return self._fit(X, y, sample_weight)

    def _encode_targets(self, y):
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.shape[0] < 2:
            raise DataError(
                f"y has only 1 class ({self.classes_[0]!r}); a classifier needs at least 2 classes"
            )
        return self._encode_known(y)

    def _encode_known(self, y):
        idx = np.searchsorted(self.classes_, y)
        if self.classes_.shape[0] == 2:
            return idx[:, None].astype(np.float64), Logistic()
        Y = np.zeros((y.shape[0], self.classes_.shape[0]))
        Y[np.arange(y.shape[0]), idx] = 1.0
        return Y, SoftmaxCrossEntropy()

    def _validation_rows(self, F, Y):
        if F.shape[1] == 1:
            return ((F[:, 0] > 0) == (Y[:, 0] > 0.5)).astype(np.float64)
        return (F.argmax(axis=1) == Y.argmax(axis=1)).astype(np.float64)

    def decision_function(self, X):
        """Raw outputs: shape (n_samples,) for two classes, (n_samples, n_classes) otherwise."""
        F = self._raw(X)
        return F[:, 0] if F.shape[1] == 1 else F

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        F = self._raw(X)
        if F.shape[1] == 1:
            p = Logistic().inverse_link(F)[:, 0]
            return np.column_stack([1.0 - p, p])
        return SoftmaxCrossEntropy().inverse_link(F)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels, shape (n_samples,)."""
        F = self._raw(X)
        idx = (F[:, 0] > 0).astype(int) if F.shape[1] == 1 else F.argmax(axis=1)
        return self.classes_[idx]


@register_model
class BoostNetRegressor(RegressorMixin, _BaseBoostNet):
    """Single-hidden-layer network grown by greedy unit selection (regression, squared error).

    Same parameters and attributes as :class:`BoostNetClassifier` (without ``classes_``); ``y`` may
    have several outputs (K columns). Early stopping monitors the validation R^2. The default
    ``alpha=None`` means ``"auto"`` here: lambda is validated along the path (a fixed
    ``alpha_ratio`` over-fitted noisy regression sets; see docs/python-api.md, "Choosing lambda").
    """

    _default_alpha = "auto"
    _default_selection = "1se"

    def fit(self, X, y, sample_weight=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like, shape (n_samples,), optional
        """
        return self._fit(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _encode_targets(self, y):
        self._y_ndim = np.ndim(y)
        Y = np.asarray(y, dtype=np.float64)
        return (Y[:, None] if Y.ndim == 1 else Y), SquaredError()

    _encode_known = _encode_targets

    def _validation_rows(self, F, Y):
        return r2_rows(Y, F)

    def predict(self, X):
        """Predictions, shape (n_samples,) or (n_samples, n_outputs)."""
        F = self._raw(X)
        return F[:, 0] if self._y_ndim == 1 else F


def _param_entries(doc: str) -> dict:
    """The numpydoc ``Parameters`` entries of ``doc``: ``{name: entry text}`` (an entry such as
    ``n_refine, refine_steps : int`` is listed under each of its names)."""
    body = doc.split("    Parameters\n    ----------\n", 1)[1].split("\n    Attributes\n", 1)[0]
    entries, current = {}, None
    for line in body.rstrip().splitlines():
        if line.startswith("    ") and not line.startswith("     ") and " : " in line:
            current = [line]
            for name in line.split(" : ", 1)[0].split(","):
                entries[name.strip()] = current
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in entries.items()}


def parameters_doc(names) -> str:
    """The ``Parameters`` section for ``names``, from :class:`BoostNetClassifier`'s docstring (the
    one place the shared parameters are documented), each entry once, in the given order."""
    entries = _param_entries(BoostNetClassifier.__doc__)
    seen, out = set(), []
    for name in names:
        text = entries[name]
        if text not in seen:
            seen.add(text)
            out.append(text)
    return "\n".join(out)


BoostNetRegressor.__doc__ += (
    "\n    Parameters\n    ----------\n"
    + parameters_doc([k for k in inspect.signature(BoostNetRegressor.__init__).parameters][1:])
    + "\n"
)


def path(X, y, *, task=None, alphas=None, X_val=None, y_val=None, sample_weight=None, **params):
    """Compute a regularisation path: the functional form of ``BoostNetClassifier().path``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
    y : array-like, shape (n_samples,) or (n_samples, n_outputs)
    task : {"classification", "regression"}, optional
        Default: inferred from ``y`` (labels or real values).
    alphas : array-like, optional
        Lambdas; default: ``n_alphas`` from lambda_max down to ``alpha_min_ratio * lambda_max``.
    X_val, y_val : array-like, optional
        Held-out data scored at every point.
    sample_weight : array-like, shape (n_samples,), optional
    **params
        Estimator parameters (``activation``, ``n_alphas``, ``alpha_min_ratio``, ``random_state``,
        ...).

    Returns
    -------
    PathResult
    """
    task = task or infer_task(y)
    if task not in ("classification", "regression"):
        raise ConfigError(f"task must be 'classification' or 'regression', got {task!r}")
    cls = BoostNetClassifier if task == "classification" else BoostNetRegressor
    return cls(**params).path(X, y, sample_weight, alphas=alphas, X_val=X_val, y_val=y_val)
