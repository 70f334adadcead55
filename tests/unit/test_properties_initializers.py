"""Properties of the truncated-normal law behind ``"xavier"`` and ``"kaiming"``.

The law is Keras's: N(0, s) restricted to [-2 s, 2 s] by re-drawing, with
``s = sqrt(scale / fan) / 0.8796...`` so that the truncated law's standard deviation is
``sqrt(scale / fan)``. Two facts pin it where a goodness-of-fit test is too weak (a
normal truncated at 3 s differs from it in 0.4 % of the mass only):

* the support: no draw is ever outside [-2 s, 2 s], and draws do come close to the edge;
* the variance: ``scale / fan`` exactly in expectation, checked on enough draws that a
  3-sigma truncation (variance 1.22x larger) or an untruncated normal is far outside.
"""

from __future__ import annotations

import numpy as np
import pytest

from beras import initializers

#: sd of N(0, 1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)).
TRUNCATED_STD = 0.87962566103423978


def test_the_constant_is_the_std_of_the_unit_normal_truncated_at_two():
    from math import erf, exp, pi, sqrt

    phi2 = exp(-2.0) / sqrt(2 * pi)
    mass = erf(2 / sqrt(2))
    assert sqrt(1 - 4 * phi2 / mass) == pytest.approx(TRUNCATED_STD, rel=1e-15)


@pytest.mark.parametrize("stddev", [1.0, 0.05])
def test_truncated_normal_support_is_two_standard_deviations(stddev):
    values = initializers.truncated_normal(np.random.default_rng(0), (400, 500), stddev)
    assert values.shape == (400, 500)
    assert np.abs(values).max() <= 2.0 * stddev
    assert np.abs(values).max() > 1.99 * stddev  # the edge is reached: not a narrower law


def test_truncated_normal_variance_is_that_of_the_truncated_law():
    # 200 000 draws: the relative standard error of the sample variance is ~0.2 %
    values = initializers.truncated_normal(np.random.default_rng(1), (200_000,), 1.0)
    assert values.var() == pytest.approx(TRUNCATED_STD**2, rel=0.01)
    assert abs(values.mean()) < 0.01


@pytest.mark.parametrize(
    ("name", "variance"),
    [("xavier", 1.0 / ((300 + 200) / 2)), ("kaiming", 2.0 / 300)],
)
def test_kernel_variance_and_support_follow_keras(name, variance):
    w = initializers.kernel(name, (300, 200), np.random.default_rng(2), dtype=np.float64)
    assert w.var() == pytest.approx(variance, rel=0.02)  # 60 000 draws: 0.5 % standard error
    s = np.sqrt(variance) / TRUNCATED_STD
    assert np.abs(w).max() <= 2.0 * s
    assert np.abs(w).max() > 1.99 * s


ALIASES = {
    "zeros": "zero",
    "Glorot_Normal": "xavier",
    "xavier-normal": "xavier",
    "he_normal": "kaiming",
    "Kaiming Normal": "kaiming",
    "glorot_uniform": "xavier uniform",
    "xavier_uniform": "xavier uniform",
    "He-Uniform": "kaiming uniform",
    "kaiming_uniform": "kaiming uniform",
}


@pytest.mark.parametrize(("alias", "canonical"), ALIASES.items())
def test_keras_aliases_name_the_same_initializer(alias, canonical):
    """Case, ``_``/``-``/space separators and Keras's names all reach one canonical name,
    and so draw exactly the same kernel from the same seed."""
    assert initializers.normalize_name(alias) == canonical
    a = initializers.kernel(alias, (4, 3), np.random.default_rng(0))
    b = initializers.kernel(canonical, (4, 3), np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)


def test_an_initializer_name_must_be_a_string():
    class LooksLikeAName:
        def __str__(self):
            return "xavier"

    with pytest.raises(ValueError, match="Unknown initializer"):
        initializers.normalize_name(LooksLikeAName())


@pytest.mark.parametrize("floatx", ["float32", "float64"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_explicit_dtype_wins_over_floatx(floatx, dtype):
    from beras import config

    previous = config.floatx()
    config.set_floatx(floatx)
    try:
        for name in initializers.INITIALIZER_NAMES:
            w = initializers.kernel(name, (3, 2), np.random.default_rng(0), dtype=dtype)
            assert w.dtype == dtype, name
        assert initializers.kernel("xavier", (3, 2), np.random.default_rng(0)).dtype == floatx
    finally:
        config.set_floatx(previous)


@pytest.mark.parametrize("bad", ["glorot", 3, None])
def test_an_unknown_initializer_message_reads_exactly(bad):
    with pytest.raises(ValueError) as err:
        initializers.normalize_name(bad)
    assert str(err.value) == (
        f"Unknown initializer {bad!r}: expected one of {list(initializers.INITIALIZER_NAMES)} "
        "(case-insensitive)"
    )


@pytest.mark.parametrize(
    ("shape", "fans"),
    [((), (1, 1)), ((5,), (5, 5)), ((3, 4), (3, 4)), ((3, 3, 2, 8), (18, 72)), ((2, 1, 3), (2, 6))],
)
def test_fans_of_every_rank(shape, fans):
    """A scalar has fans 1; a vector its length both ways; a matrix (in, out); a kernel
    ``(*window, in, out)`` in and out times the window's size."""
    assert initializers.compute_fans(shape) == fans
