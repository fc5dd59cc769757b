"""One R^2: the metrics module against scikit-learn, and the places that report it."""

import numpy as np
import pytest
from sklearn.metrics import r2_score

from boostnet import BoostNetRegressor
from boostnet.metrics import accuracy, r2, r2_rows


@pytest.mark.parametrize("K", [1, 3])
def test_r2_is_sklearns_uniform_average(K, rng):
    Y = rng.standard_normal((50, K)) * np.arange(1, K + 1)  # outputs of different scales
    F = Y + rng.standard_normal((50, K))
    expected = r2_score(Y, F)  # uniform average over outputs
    assert r2(Y, F) == pytest.approx(expected, rel=1e-12)
    # pooled over outputs would differ: the check can tell the two apart
    pooled = 1 - ((Y - F) ** 2).sum() / ((Y - Y.mean(axis=0)) ** 2).sum()
    if K > 1:
        assert abs(pooled - expected) > 1e-3


def test_r2_of_a_constant_output_follows_sklearn():
    y = np.ones(10)
    assert r2(y, y) == r2_score(y, y) == 1.0
    assert r2(y, y + 0.1) == r2_score(y, y + 0.1) == 0.0


def test_accuracy():
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75


def test_multi_output_regression_reports_one_r2(rng):
    # the estimator's score, its validation metric and the metrics module agree
    X = rng.standard_normal((120, 3))
    Y = np.column_stack([X[:, 0], 10 * np.sin(X[:, 1])]) + 0.1 * rng.standard_normal((120, 2))
    est = BoostNetRegressor(alpha=1e-3, max_units=10, random_state=0).fit(X, Y)
    F = est.predict(X)
    assert est.score(X, Y) == pytest.approx(r2(Y, F), rel=1e-12)
    assert est._validation_rows(F, Y).mean() == pytest.approx(r2(Y, F), rel=1e-12)


@pytest.mark.parametrize("K", [1, 3])
def test_r2_rows_average_to_r2(K, rng):
    # per-row terms (a held-out R^2's standard error comes from them): their mean is R^2, and a
    # row predicted worse contributes less
    Y = rng.standard_normal((40, K))
    F = Y + rng.standard_normal((40, K))
    if K > 1:
        Y[:, 2] = 1.0  # a constant output: its 0-or-1 value on every row
    rows = r2_rows(Y, F)
    assert rows.shape == (40,)
    assert rows.mean() == pytest.approx(r2_score(Y, F), rel=1e-12)
    worse = F.copy()
    worse[0] += 5.0
    assert r2_rows(Y, worse)[0] < rows[0]
    np.testing.assert_array_equal(r2_rows(Y, worse)[1:], rows[1:])
