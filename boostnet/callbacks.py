"""Ready-made callbacks for :class:`~boostnet.BoostNetClassifier` and ``BoostNetRegressor``.

A callback is any object with some of ``on_fit_begin(info)``, ``on_step_network(record, network)``,
``on_step_end(record)`` and ``on_fit_end(result)``; ``on_step_end`` may return True or a stop reason.
"""

from __future__ import annotations

import signal
import threading

import numpy as np

from ._backend import to_numpy
from ._signals import STOP_SIGNALS, Terminated, ignored
from .activations import get_activation
from .network import NetworkState, raw_output


class StopOnInterrupt:
    """Turn the first Ctrl-C (SIGINT) or SIGTERM into a clean stop at the end of the current step.

    The loop then ends with ``stop_reason_ == "interrupted"`` and the model of that step;
    ``signum`` says which signal asked. A second signal interrupts at once (``KeyboardInterrupt``,
    or :class:`~boostnet._signals.Terminated` for SIGTERM; the model of the last complete step is
    kept). A signal inherited as ignored (``SIG_IGN``) stays ignored. The previous handlers are
    restored when the fit ends. Outside the main thread it does nothing.
    """

    def __init__(self):
        self.requested = False
        self.signum = None
        self._previous = {}

    def _handler(self, signum, frame):
        if self.requested:
            if signum == signal.SIGTERM:
                raise Terminated
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum

    def on_fit_begin(self, info):
        self.requested = False
        self.signum = None
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                if not ignored(s) and s not in self._previous:  # once per fit (path: many)
                    self._previous[s] = signal.signal(s, self._handler)

    def on_step_end(self, record):
        return "interrupted" if self.requested else None

    def on_fit_end(self, result):
        for s, old in self._previous.items():
            signal.signal(s, old)
        self._previous = {}


class MetricCurve:
    """Record train and test metrics of the network after every step.

    Parameters
    ----------
    metric : callable
        ``metric(F, y) -> float`` on raw outputs ``F`` (n, K) and targets ``y``.
    activation : str
    sets : dict
        ``name -> (X, y)``, e.g. ``{"train": (Xtr, ytr), "test": (Xte, yte)}``; X already preprocessed.
    max_points : int
        Each set is subsampled (seeded) to at most this many points to keep the cost per step small.
    seed : int

    Attributes
    ----------
    rows : list of dict
        ``{"step", "n_units", <set name>: value, ...}`` per step.
    """

    def __init__(self, metric, activation, sets, max_points=2000, seed=0):
        self.metric = metric
        self.act = get_activation(activation)
        rng = np.random.default_rng(seed)
        self.sets = {}
        for name, (X, y) in sets.items():
            if X.shape[0] > max_points:
                idx = np.sort(rng.choice(X.shape[0], max_points, replace=False))
                X, y = X[idx], y[idx]
            self.sets[name] = (X, y)
        self.rows = []

    def on_step_network(self, record, network):
        host = NetworkState(*(to_numpy(v) for v in (network.W, network.c, network.coef,
                                                      network.intercept)))  # fmt: skip
        row = {"step": record.step, "n_units": record.n_units}
        for name, (X, y) in self.sets.items():
            F = raw_output(X, host, self.act)
            row[name] = float(self.metric(F, y))
        self.rows.append(row)
