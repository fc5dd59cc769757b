"""The network: its state and its one forward pass.

A network with m hidden units, d inputs and K outputs computes

    F(X) = act(X W^T + 1 c^T) coef + 1 intercept^T,      W: (m, d), c: (m,), coef: (m, K), intercept: (K,),

the raw outputs (logits for the classifier, predictions for the regressor). :func:`raw_output` is
the only implementation of it: the loop's validation, the estimators' predictions, the per-step
curves and the path's scores all call it, on any array module.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._backend import get_namespace
from .activations import Activation
from .scoring import transform


@dataclass
class NetworkState:
    """A complete network: ``F(X) = act(X W^T + c) coef + intercept``.

    W: (m, d); c: (m,); coef: (m, K); intercept: (K,). Arrays on one device (the training device
    inside the loop, the host in a fitted estimator).
    """

    W: object
    c: object
    coef: object
    intercept: object

    @property
    def n_units(self) -> int:
        return int(self.W.shape[0])


def raw_output(X, network, activation: Activation):
    """Raw outputs ``F`` (n, K) of ``network`` (anything with ``W``, ``c``, ``coef``,
    ``intercept``) on ``X`` (n, d), in the array module of ``X``."""
    xp = get_namespace(X)
    H = transform(X, xp.asarray(network.W), xp.asarray(network.c), activation)
    return H @ xp.asarray(network.coef) + xp.asarray(network.intercept)


__all__ = ["NetworkState", "raw_output"]
