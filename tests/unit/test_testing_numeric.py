"""Fast example tests of beras.testing's numerical derivative."""

from __future__ import annotations

import numpy as np
import pytest

from beras.testing import numerical_jacobian

FUNCTIONS = [
    (np.sin, np.cos),
    (np.exp, np.exp),
    (lambda x: x**3, lambda x: 3 * x**2),
    (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    (lambda x: np.log1p(x**2), lambda x: 2 * x / (1 + x**2)),
]


@pytest.mark.parametrize(("f", "df"), FUNCTIONS)
def test_error_estimate_covers_the_true_error(f, df) -> None:
    x = np.random.default_rng(0).uniform(-3, 3, 50)
    (jac,) = numerical_jacobian(f, x)
    diag = np.diag(jac.value)
    true = df(x)
    assert jac.reliable.all()
    assert np.all(np.abs(diag - true) <= 4 * np.diag(jac.error) + 1e-7 * np.abs(true))
    assert np.all(np.abs(diag - true) <= 1e-8 * np.maximum(np.abs(true), 1))
    off = jac.value[~np.eye(50, dtype=bool)]
    assert np.all(off == 0)


def test_step_is_relative_to_the_value() -> None:
    x = np.array([1e8, 1e-8, 0.0])
    (jac,) = numerical_jacobian(lambda v: v**2, x)
    np.testing.assert_allclose(np.diag(jac.value), 2 * x, rtol=1e-9, atol=1e-12)


def test_kink_gives_the_one_sided_interval() -> None:
    (jac,) = numerical_jacobian(np.abs, np.array([0.0, 2.0]))
    assert jac.kink[0, 0]
    assert not jac.kink[1, 1]
    assert jac.lower[0, 0] == pytest.approx(-1)
    assert jac.upper[0, 0] == pytest.approx(1)
    assert jac.value[1, 1] == pytest.approx(1)


def test_bounds_keep_evaluations_inside_the_domain() -> None:
    seen = []

    def f(p):
        seen.append(p.copy())
        return np.log(np.maximum(p, 1e-300))

    (jac,) = numerical_jacobian(f, np.array([0.5, 1.0]), bounds={0: (0.0, 1.0)})
    assert min(s.min() for s in seen) >= 0
    assert max(s.max() for s in seen) <= 1
    assert jac.value[0, 0] == pytest.approx(2.0)
    assert jac.kink[1, 1]  # at the bound: between the inside slope (1) and 0
    assert jac.lower[1, 1] == pytest.approx(0, abs=1e-9)
    assert jac.upper[1, 1] == pytest.approx(1)


def test_a_steep_point_is_refined_and_a_jump_is_unreliable() -> None:
    (jac,) = numerical_jacobian(np.log, np.array([1e-7]))
    assert jac.reliable.all()
    assert jac.value[0, 0] == pytest.approx(1e7, rel=1e-6)
    (jump,) = numerical_jacobian(lambda v: (v >= 0).astype(float), np.array([0.0]))
    assert not jump.reliable.any()


def test_several_arrays_and_outputs() -> None:
    a, b = np.array([1.0, 2.0]), np.array([3.0])
    ja, jb = numerical_jacobian(lambda u, v: [u * v, u.sum() + v], a, b)
    np.testing.assert_allclose(ja.value, [[3, 0], [0, 3], [1, 1]], atol=1e-9)
    np.testing.assert_allclose(jb.value, [[1], [2], [1]], atol=1e-9)
    assert ja.output_shapes == [(2,), (1,)]
    assert ja.evaluations > 0
    (only_b,) = numerical_jacobian(lambda u, v: u * v, a, b, argnums=1)
    np.testing.assert_allclose(only_b.value, [[1], [2]], atol=1e-9)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="argnums must be indices of the 1 arrays"):
        numerical_jacobian(np.sin, np.ones(2), argnums=3)
    with pytest.raises(ValueError, match="lo < hi"):
        numerical_jacobian(np.sin, np.ones(2), bounds={0: (1.0, 0.0)})
