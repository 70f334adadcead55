"""A model driven through random sequences of what users do with it.

A hypothesis ``RuleBasedStateMachine`` compiles, fits for a few steps, evaluates, predicts,
saves and loads weights into a fresh model, freezes and unfreezes layers and switches
``set_floatx``, in any order. After every step it checks the invariants:

- ``evaluate`` and ``predict`` never change a weight;
- a frozen layer never moves (while other layers train);
- save → load into a fresh model reproduces the saved model's predictions exactly (and a
  load that cannot fit, such as another dtype, raises and changes nothing);
- the same seed gives the same sequence of weights: at the end, the whole sequence is
  replayed from the seed on a new model and every step's weights must be bit-identical.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import beras
from beras import config
from beras.layers import Dense
from beras.optimizers import Adam, BasicOptimizer, RMSProp
from beras.testing.strategies import budget

N_IN, N_HIDDEN, N_OUT = 4, 6, 3
OPTIMIZERS = {
    "sgd": lambda lr: BasicOptimizer(lr),
    "rmsprop": lambda lr: RMSProp(lr),
    "adam": lambda lr: Adam(lr),
}


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    x = rng.normal(size=(24, N_IN))
    y = np.eye(N_OUT)[rng.integers(0, N_OUT, size=24)]
    return x, y


X, Y = _data()


def _model() -> beras.SequentialModel:
    """A small MLP whose weights come from Beras's global generator (seeded)."""
    return beras.SequentialModel(
        [
            Dense(N_IN, N_HIDDEN, "kaiming"),
            beras.ReLU(),
            Dense(N_HIDDEN, N_OUT, "xavier"),
            beras.Softmax(),
        ]
    )


def _weights(model: beras.SequentialModel) -> list[np.ndarray]:
    return [np.array(w, copy=True) for w in model.weights]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b)
    )


@dataclass
class Session:
    """The system under test: one model and what a user has done to it.

    Every operation is a method; ``log`` keeps each call so a second ``Session`` with the
    same seed can replay them.
    """

    seed: int
    tmp: Path
    model: beras.SequentialModel = field(init=False)
    saved: list[tuple[Path, str, np.ndarray]] = field(default_factory=list)
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        config.set_floatx("float32")
        beras.utils.set_random_seed(self.seed)
        self.model = _model()

    def do(self, op: str, **kwargs: Any) -> Any:
        self.log.append((op, kwargs))
        return getattr(self, op)(**kwargs)

    def compile(self, optimizer: str, lr: float) -> None:
        self.model.compile(
            OPTIMIZERS[optimizer](lr), beras.CategoricalCrossEntropy(), beras.CategoricalAccuracy()
        )

    def fit(self, epochs: int, batch_size: int) -> None:
        self.model.fit(X, Y, epochs=epochs, batch_size=batch_size, verbose=0)

    def evaluate(self) -> None:
        self.model.evaluate(X, Y, batch_size=8)

    def predict(self) -> np.ndarray:
        return self.model.predict(X)

    def save(self) -> None:
        path = self.tmp / f"weights-{len(self.saved)}.npz"
        self.model.save_weights(str(path))
        self.saved.append((path, self.model.weights[0].dtype.name, self.model.predict(X)))

    def set_trainable(self, layer: int, trainable: bool) -> None:
        self.model.layers[layer].trainable = trainable

    def set_floatx(self, dtype: str) -> None:
        config.set_floatx(dtype)


class ModelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="beras-stateful-"))
        self.session: Session | None = None
        self.history: list[list[np.ndarray]] = []

    @property
    def s(self) -> Session:
        assert self.session is not None
        return self.session

    @initialize(seed=st.integers(0, 2**16))
    def start(self, seed: int) -> None:
        self.session = Session(seed, self.tmp)
        self.history.append(_weights(self.s.model))

    def _step(self, op: str, **kwargs: Any) -> Any:
        result = self.s.do(op, **kwargs)
        self.history.append(_weights(self.s.model))
        return result

    @rule(optimizer=st.sampled_from(sorted(OPTIMIZERS)), lr=st.sampled_from([1e-3, 1e-2, 0.1]))
    def compile(self, optimizer: str, lr: float) -> None:
        self._step("compile", optimizer=optimizer, lr=lr)

    @precondition(lambda self: self.s.model.optimizer is not None)
    @rule(epochs=st.integers(1, 2), batch_size=st.sampled_from([5, 8, 24]))
    def fit(self, epochs: int, batch_size: int) -> None:
        frozen = [
            (i, _weights(layer))
            for i, layer in enumerate(self.s.model.layers)
            if layer.weights and not layer.trainable
        ]
        self._step("fit", epochs=epochs, batch_size=batch_size)
        for i, before in frozen:
            assert _same(before, _weights(self.s.model.layers[i])), f"frozen layer {i} moved"

    @precondition(lambda self: self.s.model.optimizer is not None)
    @rule()
    def evaluate(self) -> None:
        before = _weights(self.s.model)
        self._step("evaluate")
        assert _same(before, _weights(self.s.model)), "evaluate changed a weight"

    @rule()
    def predict(self) -> None:
        before = _weights(self.s.model)
        first = self._step("predict")
        assert _same(before, _weights(self.s.model)), "predict changed a weight"
        np.testing.assert_array_equal(first, self.s.model.predict(X))

    @rule()
    def save(self) -> None:
        self._step("save")

    @precondition(lambda self: self.s.saved)
    @rule(data=st.data())
    def load_into_a_fresh_model(self, data: st.DataObject) -> None:
        path, dtype, predictions = data.draw(st.sampled_from(self.s.saved))
        fresh = _model()  # in the current floatx; draws from the global generator
        self.history.append(_weights(self.s.model))
        self.s.log.append(("_model_draw", {}))
        before = _weights(fresh)
        if fresh.weights[0].dtype.name != dtype:
            with pytest.raises(ValueError, match="dtype"):
                fresh.load_weights(str(path))
            assert _same(before, _weights(fresh)), "a refused load changed the model"
            return
        fresh.load_weights(str(path))
        np.testing.assert_array_equal(fresh.predict(X), predictions)

    @rule(layer=st.sampled_from([0, 2]), trainable=st.booleans())
    def freeze_or_unfreeze(self, layer: int, trainable: bool) -> None:
        self._step("set_trainable", layer=layer, trainable=trainable)
        assert self.s.model.layers[layer].trainable is trainable

    @rule(dtype=st.sampled_from(["float32", "float64"]))
    def set_floatx(self, dtype: str) -> None:
        self._step("set_floatx", dtype=dtype)

    @invariant()
    def weights_stay_finite(self) -> None:
        if self.session is not None:
            assert all(np.isfinite(w).all() for w in self.s.model.weights)

    def teardown(self) -> None:
        try:
            if self.session is not None:
                self._replay()
        finally:
            config.set_floatx("float32")
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _replay(self) -> None:
        """The same seed and the same calls give the same weights, step by step."""
        replay = Session(self.s.seed, self.tmp / "replay")
        replay.tmp.mkdir()
        replayed = [_weights(replay.model)]
        for op, kwargs in self.s.log:
            if op == "_model_draw":
                _model()  # the fresh model of a load drew from the global generator too
            else:
                getattr(replay, op)(**kwargs)
            replayed.append(_weights(replay.model))
        assert len(replayed) == len(self.history)
        for step, (a, b) in enumerate(zip(self.history, replayed)):
            assert _same(a, b), f"step {step} ({self.s.log[step - 1][0] if step else 'start'})"


ModelMachine.TestCase.settings = settings(
    settings.default, max_examples=budget(30), stateful_step_count=15
)
TestModelMachine = ModelMachine.TestCase
