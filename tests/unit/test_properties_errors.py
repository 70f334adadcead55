"""Property: every error a user can cause names the component, what it expected and what it
got, and says how to fix it where the fix is known; long lists in a message are cut to a
fixed length and say so.

Facts are matched as whole words, case-sensitive: a message that names ``RMSProp`` as
``rmsprop`` or ``XXRMSProp`` does not name the component the user wrote.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from beras import activations
from beras.layers import Concatenate
from beras.losses import CategoricalCrossEntropy, MeanSquaredError
from beras.metrics import CategoricalAccuracy
from beras.onehot import OneHotEncoder
from beras.testing import domains, sample_case


def _names(message: str, *facts: str) -> None:
    for fact in facts:
        assert re.search(rf"(?<!\w){re.escape(fact)}(?!\w)", message), (fact, message)


def _error(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as err:
        fn(*args, **kwargs)
    return str(err.value)


# -------------------------------------------------------------------- every layer
@pytest.mark.parametrize("domain", domains(), ids=lambda d: d.name or d.cls.__name__)
def test_non_numeric_input_is_a_type_error_naming_the_layer(domain):
    case = sample_case(domain, rng=0)
    layer = case.diffable
    inputs = [np.full(np.shape(x), "a") if k == 0 else x for k, x in enumerate(case.inputs)]
    message = _error(TypeError, layer, *inputs)
    _names(message, type(layer).__name__, "numeric", "<U1")


@pytest.mark.parametrize("domain", domains(), ids=lambda d: d.name or d.cls.__name__)
def test_repr_names_the_class(domain):
    layer = sample_case(domain, rng=0).diffable
    _names(repr(layer), type(layer).__name__)


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Softmax", "MeanSquaredError"])
def test_weightless_layers_repr_as_their_constructor_call(name):
    import beras

    assert repr(getattr(beras, name)()) == f"{name}()"


def test_metric_and_optimizer_repr_as_their_constructor_call():
    from beras.optimizers import Adam, BasicOptimizer

    assert repr(CategoricalAccuracy()) == "CategoricalAccuracy()"
    assert repr(Adam(0.01)) == "Adam(learning_rate=0.01)"
    assert repr(BasicOptimizer(0.5)) == "BasicOptimizer(learning_rate=0.5)"


def test_unknown_activation_lists_each_valid_name_once():
    message = _error(ValueError, activations.get, "gelu")
    _names(message, "'gelu'")
    listed = re.search(r"expected one of (\[.*\])", message).group(1)
    assert listed == repr(["leaky_relu", "relu", "sigmoid", "softmax"])


@pytest.mark.parametrize(
    ("args", "what", "value"), [((0, 3), "input_size", "0"), ((3, 0), "output_size", "0")]
)
def test_dense_sizes_must_be_positive_integers(args, what, value):
    from beras.layers import Dense

    message = _error(ValueError, Dense, *args)
    _names(message, "Dense", what, "positive integer", value)


def test_dense_given_one_sample_says_to_add_a_batch_axis():
    from beras.layers import Dense

    message = _error(ValueError, Dense(3, 2), np.ones(3))
    _names(message, "Dense(3→2)", "(batch, 3)", "(3,)", "add a batch axis", "x[None, :]")


# -------------------------------------------------------------------------- losses
def test_mse_shape_mismatch_has_no_one_hot_hint():
    message = _error(ValueError, MeanSquaredError(), np.zeros((4, 3)), np.zeros(4))
    assert message.endswith("got y_pred (4, 3) and y_true (4,)"), message


@pytest.mark.parametrize("labels_shape", [(2, 5), (2, 5, 1)])
def test_cce_hints_one_hot_encoding_for_label_shaped_y_true_of_any_rank(labels_shape):
    probs = np.full((2, 5, 3), 1 / 3)
    message = _error(ValueError, CategoricalCrossEntropy(), probs, np.zeros(labels_shape))
    _names(message, "CategoricalCrossEntropy", "(2, 5, 3)", str(labels_shape))
    _names(message, "one-hot encode", "beras.OneHotEncoder().forward(labels)")


def test_cce_shape_mismatch_without_label_shape_has_no_hint():
    message = _error(
        ValueError, CategoricalCrossEntropy(), np.full((2, 3), 1 / 3), np.zeros((2, 4))
    )
    assert message.endswith("got y_pred (2, 3) and y_true (2, 4)"), message


def test_cce_needs_a_class_axis():
    message = _error(ValueError, CategoricalCrossEntropy(), np.full(4, 0.25), np.zeros(4))
    _names(message, "CategoricalCrossEntropy", "(batch, classes)", "(4,)")


@pytest.mark.parametrize("probs", [[[0.5, 1.5]], [[-0.5, 0.5]], [[1.0 + 1e-6, 0.0]]])
def test_cce_rejects_any_value_outside_0_1_as_probabilities(probs):
    message = _error(ValueError, CategoricalCrossEntropy(), np.array(probs), np.array([[1, 0]]))
    _names(
        message,
        "CategoricalCrossEntropy",
        "probabilities",
        "CategoricalCrossEntropy(from_logits=True)",
    )


@pytest.mark.parametrize("epsilon", [0.0, -1e-3, 0.5, 0.7, 1.2])
def test_cce_epsilon_must_be_in_0_half(epsilon):
    message = _error(ValueError, CategoricalCrossEntropy, epsilon=epsilon)
    _names(message, "CategoricalCrossEntropy", "epsilon", repr(epsilon), "(0, 0.5)")


def test_cce_epsilon_just_below_half_is_valid():
    assert CategoricalCrossEntropy(epsilon=0.49).epsilon == 0.49


# -------------------------------------------------------------------------- metrics
def test_accuracy_shape_mismatch_without_index_labels_has_no_hint():
    message = _error(ValueError, CategoricalAccuracy(), np.ones((3, 4)), np.ones((3, 5)))
    _names(message, "CategoricalAccuracy", "(3, 4)", "(3, 5)")
    assert message.endswith("labels (3, 5)"), message


def test_accuracy_hints_one_hot_encoding_for_index_labels_of_any_rank():
    message = _error(ValueError, CategoricalAccuracy(), np.ones((2, 5, 3)), np.ones((2, 5)))
    _names(message, "CategoricalAccuracy", "(2, 5, 3)", "(2, 5)")
    _names(message, "one-hot encode", "beras.OneHotEncoder().forward(labels)")


def test_accuracy_of_an_empty_batch():
    message = _error(ValueError, CategoricalAccuracy(), np.ones((0, 3)), np.ones((0, 3)))
    _names(message, "CategoricalAccuracy", "non-empty batch", "0 rows")


# -------------------------------------------------------------------------- one-hot
def test_fit_on_no_labels():
    message = _error(ValueError, OneHotEncoder().fit, np.array([]))
    _names(message, "OneHotEncoder.fit", "at least one label", "none")


def test_inverse_before_fit():
    message = _error(RuntimeError, OneHotEncoder().inverse, np.eye(2))
    _names(message, "OneHotEncoder.inverse", "before fit/forward")


@pytest.mark.parametrize(("n_fitted", "cut"), [(20, False), (21, True), (25, True)])
def test_unseen_labels_message_lists_ten_unseen_and_twenty_fitted(n_fitted, cut):
    enc = OneHotEncoder()
    enc.fit(np.arange(n_fitted))
    unseen = np.arange(100, 112)  # 12 unseen labels
    message = _error(ValueError, enc.forward, unseen)
    _names(message, "OneHotEncoder.forward", "never seen in fit")
    assert f"fit: {list(range(100, 110))};" in message
    listed = f"fitted labels: {list(range(min(n_fitted, 20)))}"
    expected = listed + (" ..." if cut else "") + ". Fit on data that contains every label."
    assert expected in message, message


def test_inverse_message_lists_at_most_ten_bad_rows():
    enc = OneHotEncoder()
    enc.fit(np.arange(3))
    rows = np.full((12, 3), 0.5)
    message = _error(ValueError, enc.inverse, rows)
    assert f"rows {list(range(10))} are not, e.g. [0.5, 0.5, 0.5]" in message, message


# ---------------------------------------------------------------------- Concatenate
@pytest.mark.parametrize("shapes", [[(2, 3, 4), (2, 5, 4)], [(2, 3), (4, 3)], [(), ()], [(3,), ()]])
def test_concatenate_inputs_must_agree_on_all_but_the_last_axis(shapes):
    arrays = [np.ones(s) for s in shapes]
    message = _error(ValueError, Concatenate(), *arrays)
    _names(message, "Concatenate", "differ only in the last axis", str(list(shapes)))


@pytest.mark.parametrize("loss", [MeanSquaredError(), CategoricalCrossEntropy()], ids=repr)
def test_loss_of_scalars_and_of_non_numeric_labels(loss):
    name = type(loss).__name__
    message = _error(ValueError, loss, np.float64(0.5), np.float64(1.0))
    _names(message, name, "batched inputs", "scalars")
    message = _error(TypeError, loss, np.full((2, 3), 0.5), np.full((2, 3), "a"))
    _names(message, name, "numeric", "<U1")
