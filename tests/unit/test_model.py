"""Model and SequentialModel: weights, compile, fit, evaluate, predict, summary, dtypes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from beras import config
from beras.activations import LeakyReLU, Softmax
from beras.callbacks import Callback
from beras.core import Diffable
from beras.gradient_tape import GradientTape
from beras.layers import Dense
from beras.losses import CategoricalCrossEntropy, MeanSquaredError
from beras.metrics import CategoricalAccuracy
from beras.model import NonFiniteLossError, SequentialModel, print_stats, update_metric_dict
from beras.optimizers import Adam, BasicOptimizer
from beras.utils import set_random_seed


@pytest.fixture
def float64():
    previous = config.floatx()
    config.set_floatx("float64")
    yield
    config.set_floatx(previous)


def _data(n=10, features=2, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(dtype)
    y = np.eye(classes, dtype=dtype)[rng.integers(0, classes, n)]
    return x, y


def _model(features=2, classes=3, optimizer=None, seed=0):
    model = SequentialModel(
        [Dense(features, 4, seed=seed), LeakyReLU(), Dense(4, classes, seed=seed + 1), Softmax()]
    )
    model.compile(optimizer or Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def _snapshot(model):
    return [np.array(w, copy=True) for w in model.weights]


class _Recorder(SequentialModel):
    """Records every batch it is given (the first feature holds each sample's index)."""

    def __init__(self, layers):
        super().__init__(layers)
        self.batches: list[np.ndarray] = []

    def batch_step(self, x, y, training=True):
        if training:
            self.batches.append(np.asarray(x)[:, 0].astype(int))
        return super().batch_step(x, y, training)


def _indexed_data(n):
    x = np.stack([np.arange(n, dtype=np.float32), np.zeros(n, dtype=np.float32)], axis=1)
    y = np.eye(3, dtype=np.float32)[np.arange(n) % 3]
    return x, y


def _recorder(n_features=2):
    model = _Recorder([Dense(n_features, 3, initializer="zero"), Softmax()])
    model.compile(BasicOptimizer(1e-3), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


# ------------------------------------------------------------------- weights, compile


def test_weights_are_every_layers_weights_in_order():
    model = _model()
    d1, _, d2, _ = model.layers
    assert [id(w) for w in model.weights] == [id(d1.w), id(d1.b), id(d2.w), id(d2.b)]
    assert [id(w) for w in model.trainable_variables] == [id(w) for w in model.weights]
    d1.trainable = False
    assert [id(w) for w in model.trainable_variables] == [id(d2.w), id(d2.b)]


def test_compile_sets_the_three_attributes():
    model = SequentialModel([Dense(2, 2)])
    opt, loss, acc = BasicOptimizer(0.1), MeanSquaredError(), CategoricalAccuracy()
    model.compile(opt, loss, acc)
    assert model.optimizer is opt
    assert model.compiled_loss is loss
    assert model.compiled_acc is acc


def test_model_rejects_non_diffable_layers():
    with pytest.raises(
        TypeError, match="SequentialModel expected Diffable layers, got int at position 1"
    ):
        SequentialModel([Dense(2, 2), 3])


def test_forward_calls_each_layer_so_the_tape_sees_it():
    model = _model()
    x, _ = _data()
    with GradientTape() as tape:
        out = model.forward(x)
    assert tape.previous_layers[id(out)] is model.layers[-1]
    assert Diffable.gradient_tape is None


# ------------------------------------------------------------------------------- fit


def test_fit_returns_per_epoch_history_and_learns():
    set_random_seed(0)
    x, y = _data(n=60, seed=1)
    model = _model(optimizer=Adam(0.05))
    before = model.evaluate(x, y)[0]["loss"]
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert set(history) == {"loss", "acc"}
    assert all(len(v) == 3 for v in history.values())
    assert all(isinstance(v, float) for vals in history.values() for v in vals)
    assert model.evaluate(x, y)[0]["loss"] < before


def test_fit_keeps_the_last_partial_batch_and_sees_every_sample_once_per_epoch():
    model = _recorder()
    x, y = _indexed_data(10)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=0)
    assert [len(b) for b in model.batches] == [4, 4, 2, 4, 4, 2]
    for epoch in range(2):
        seen = np.concatenate(model.batches[3 * epoch : 3 * epoch + 3])
        np.testing.assert_array_equal(np.sort(seen), np.arange(10))


def test_fit_reshuffles_every_epoch_from_a_seeded_generator():
    first, second = _recorder(), _recorder()
    x, y = _indexed_data(12)
    first.fit(x, y, epochs=3, batch_size=12, verbose=0, seed=7)
    second.fit(x, y, epochs=3, batch_size=12, verbose=0, seed=7)
    orders = [b.tolist() for b in first.batches]
    assert orders == [b.tolist() for b in second.batches]
    assert len({tuple(o) for o in orders}) == 3  # a new order each epoch
    assert orders[0] != list(range(12))

    set_random_seed(3)
    third = _recorder()
    third.fit(x, y, epochs=1, batch_size=12, verbose=0)
    set_random_seed(3)
    fourth = _recorder()
    fourth.fit(x, y, epochs=1, batch_size=12, verbose=0)
    assert third.batches[0].tolist() == fourth.batches[0].tolist()


def test_fit_without_shuffle_keeps_the_order():
    model = _recorder()
    x, y = _indexed_data(5)
    model.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0)
    assert [b.tolist() for b in model.batches] == [[0, 1], [2, 3], [4]] * 2


class _FixedMetrics(SequentialModel):
    """batch_step returns known per-batch metrics: loss = the batch's mean index, acc = its size."""

    def __init__(self):
        super().__init__([Dense(2, 3, initializer="zero")])
        self.returned: list[tuple[int, dict[str, float]]] = []

    def batch_step(self, x, y, training=True):
        x = np.asarray(x)
        metrics = {"loss": float(x[:, 0].mean()), "acc": float(len(x))}
        self.returned.append((len(x), metrics))
        return metrics if training else (metrics, np.zeros((len(x), 3)))


def test_epoch_metrics_are_weighted_by_batch_size():
    model = _FixedMetrics()
    model.compile(BasicOptimizer(0.1), MeanSquaredError(), CategoricalAccuracy())
    x, y = _indexed_data(10)
    history = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    assert model.returned[:3] == [
        (4, {"loss": 1.5, "acc": 4.0}),
        (4, {"loss": 5.5, "acc": 4.0}),
        (2, {"loss": 8.5, "acc": 2.0}),
    ]
    # weighted: (4 * 1.5 + 4 * 5.5 + 2 * 8.5) / 10 = 4.5; the unweighted mean would be 5.1667
    assert history["loss"] == [4.5, 4.5]
    assert history["acc"] == [pytest.approx((16 + 16 + 4) / 10)] * 2

    shuffled = _FixedMetrics()
    shuffled.compile(BasicOptimizer(0.1), MeanSquaredError(), CategoricalAccuracy())
    history = shuffled.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=0)
    assert [s for s, _ in shuffled.returned] == [4, 4, 2]
    assert history["loss"][0] == pytest.approx(4.5, rel=1e-12)  # the mean index, whatever the order


def test_validation_data_adds_val_metrics():
    set_random_seed(1)
    x, y = _data(n=20, seed=2)
    xv, yv = _data(n=7, seed=3)
    model = _model()
    history = model.fit(x, y, epochs=2, batch_size=8, validation_data=(xv, yv), verbose=0)
    assert set(history) == {"loss", "acc", "val_loss", "val_acc"}
    metrics, _ = model.evaluate(xv, yv)
    assert history["val_loss"][-1] == pytest.approx(metrics["loss"], rel=1e-6)
    assert history["val_acc"][-1] == pytest.approx(metrics["acc"])


def test_fit_with_zero_epochs_changes_nothing():
    model = _model()
    x, y = _data()
    before = _snapshot(model)
    assert model.fit(x, y, epochs=0, batch_size=4, verbose=0) == {}
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w, b)


def test_fit_prints_progress_when_verbose(capsys):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=5, verbose=2)
    assert "Epoch 1/1" in capsys.readouterr().out


# ------------------------------------------------------------- Ctrl-C and early stops


class _CtrlC(Callback):
    """Raises KeyboardInterrupt, as Ctrl-C would, in ``hook`` during epoch ``epoch``."""

    def __init__(self, hook, epoch, batch=0):
        self.hook, self.epoch, self.batch = hook, epoch, batch
        self.current = -1

    def on_epoch_begin(self, epoch):
        self.current = epoch
        if self.hook == "epoch_begin" and epoch == self.epoch:
            raise KeyboardInterrupt

    def on_batch_end(self, batch, logs):
        if self.hook == "batch" and self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs):
        if self.hook == "epoch_end" and epoch == self.epoch:
            raise KeyboardInterrupt


def _interrupt_second_evaluate(monkeypatch, model):
    """Ctrl-C during the second epoch's validation."""
    real = model.evaluate
    calls = {"n": 0}

    def evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "evaluate", evaluate)


@pytest.mark.parametrize(
    ("where", "expected", "lines"),
    [
        ("epoch_begin", (1, 0), 1),
        ("batch", (1, 8), 1),
        ("validation", (1, 20), 1),
        ("epoch_end", (1, 20), 2),  # the epoch line comes before the callbacks
    ],
)
def test_ctrl_c_anywhere_in_an_epoch_records_where(monkeypatch, capsys, where, expected, lines):
    model = _model()
    x, y = _data(n=20)  # 5 batches of 4
    callbacks = [_CtrlC(where, epoch=1, batch=1)]
    if where == "validation":
        _interrupt_second_evaluate(monkeypatch, model)
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x,
            y,
            epochs=3,
            batch_size=4,
            validation_data=_data(n=6, seed=1),
            verbose=2,
            callbacks=callbacks,
        )
    assert model.interrupted_at == expected
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in printed] == [
        f"Epoch {i}/3" for i in range(1, lines + 1)
    ]


def test_fit_resets_interrupted_at_and_stop_reason(monkeypatch):
    model = _model()
    assert (model.interrupted_at, model.stop_reason) == (None, "")
    x, y = _data(n=20)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[_CtrlC("epoch_end", 0)])
    assert model.interrupted_at == (0, 20)

    real_step = model.batch_step
    calls = {"n": 0}

    def diverge_first(xb, yb, training=True):
        calls["n"] += 1
        if calls["n"] == 1:
            raise NonFiniteLossError("the loss is nan.")
        return real_step(xb, yb, training)

    monkeypatch.setattr(model, "batch_step", diverge_first)
    with pytest.warns(RuntimeWarning, match=r"fit stopped at epoch 1, batch 1/5"):
        assert model.fit(x, y, epochs=2, batch_size=4, verbose=0) == {}
    assert model.interrupted_at is None
    assert "the loss is nan" in model.stop_reason

    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert len(history["loss"]) == 1
    assert (model.interrupted_at, model.stop_reason) == (None, "")


# --------------------------------------------------------------- evaluate and predict


def test_evaluate_never_trains_and_returns_metrics_and_predictions():
    set_random_seed(2)
    x, y = _data(n=10)
    model = _model(optimizer=Adam(0.1))
    model.fit(x, y, epochs=1, batch_size=5, verbose=0)  # optimizer state exists
    weights = _snapshot(model)
    opt = model.optimizer
    t, m = opt.t, {k: np.array(v) for k, v in opt.m.items()}
    metrics, preds = model.evaluate(x, y, batch_size=3)
    assert set(metrics) == {"loss", "acc"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert preds.shape == (10, 3)
    for w, b in zip(model.weights, weights):
        np.testing.assert_array_equal(w, b)
    assert opt.t == t
    for k, v in m.items():
        np.testing.assert_array_equal(opt.m[k], v)
    # averaged over the whole set (weighted by batch size), equal to one big batch
    full = CategoricalCrossEntropy()(model.predict(x), y)
    assert metrics["loss"] == pytest.approx(float(full), rel=1e-5)
    np.testing.assert_allclose(preds, model.predict(x), rtol=1e-6)


def test_predict_with_and_without_batch_size():
    model = _model()
    x, _ = _data(n=11)
    whole = model.predict(x)
    batched = model.predict(x, batch_size=4)
    assert whole.shape == batched.shape == (11, 3)
    np.testing.assert_allclose(whole, batched, rtol=1e-6)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, rtol=1e-5)


def test_batch_step_return_types():
    x, y = _data(n=6)
    model = _model()
    before = _snapshot(model)
    result = model.batch_step(x, y, training=False)
    assert isinstance(result, tuple)
    assert len(result) == 2
    metrics, preds = result
    assert set(metrics) == {"loss", "acc"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert np.shape(preds) == (6, 3)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w, b)

    metrics = model.batch_step(x, y, training=True)
    assert isinstance(metrics, dict)
    assert set(metrics) == {"loss", "acc"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert any(not np.array_equal(w, b) for w, b in zip(model.weights, before))


def test_batch_step_default_is_training():
    x, y = _data(n=6)
    model = _model()
    before = _snapshot(model)
    assert isinstance(model.batch_step(x, y), dict)
    assert any(not np.array_equal(w, b) for w, b in zip(model.weights, before))


# -------------------------------------------------------------------------- summary


def test_summary_lists_layers_shapes_and_param_counts():
    model = SequentialModel(
        [Dense(784, 256, seed=0), LeakyReLU(), Dense(256, 10, seed=1), Softmax()]
    )
    lines: list[str] = []
    text = model.summary(print_fn=lines.append)
    assert lines == [text]
    assert "dense (Dense)" in text
    assert "dense_1 (Dense)" in text
    assert "leakyrelu (LeakyReLU)" in text
    assert "softmax (Softmax)" in text
    assert "(None, 256)" in text
    assert "(None, 10)" in text
    assert "200,960" in text  # 784 * 256 + 256
    assert "2,570" in text  # 256 * 10 + 10
    assert "Total params: 203,530" in text
    assert "Trainable params: 203,530" in text
    assert "Non-trainable params: 0" in text
    model.layers[2].trainable = False
    assert "Non-trainable params: 2,570" in model.summary(print_fn=None)


# -------------------------------------------------------- print_stats, update_metric_dict


def test_print_stats_formats_one_line(capsys):
    print_stats({"loss": [0.5, 0.25], "acc": 0.75}, batch_num=11, num_batches=469, epoch=0)
    out = capsys.readouterr().out
    assert "Epoch  1" in out
    assert "Batch  12/469" in out
    assert "loss : 0.375" in out
    assert "acc : 0.750" in out
    assert out.endswith("\r")
    print_stats({"loss": 1.0}, avg=True)
    out = capsys.readouterr().out
    assert "Batch Avg" in out
    assert out.endswith("\n")


def test_update_metric_dict_appends_means():
    history: dict[str, list[float]] = {}
    update_metric_dict(history, {"loss": [1.0, 3.0], "acc": 0.5})
    update_metric_dict(history, {"loss": [2.0], "acc": [1.0, 0.0]})
    assert history == {"loss": [2.0, 2.0], "acc": [0.5, 0.5]}


# -------------------------------------------------------------------------- dtypes


class _GradSpy(Adam):
    def __init__(self, lr):
        super().__init__(lr)
        self.grad_dtypes: set[np.dtype] = set()

    def apply_gradients(self, trainable_params, grads):
        self.grad_dtypes |= {np.asarray(g).dtype for g in grads}
        super().apply_gradients(trainable_params, grads)


def test_float32_data_trains_in_float32_end_to_end():
    x, y = _data(n=12, dtype=np.float32)
    opt = _GradSpy(0.01)
    model = _model(optimizer=opt)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert {w.dtype for w in model.weights} == {np.dtype(np.float32)}
    assert opt.grad_dtypes == {np.dtype(np.float32)}
    assert {s.dtype for table in (opt.m, opt.v) for s in table.values()} == {np.dtype(np.float32)}
    assert all(layer.outputs[0].dtype == np.float32 for layer in model.layers)
    assert model.predict(x).dtype == np.float32


def test_float64_floatx_gives_float64_weights_and_training(float64):
    x, y = _data(n=8, dtype=np.float64)
    opt = _GradSpy(0.01)
    model = _model(optimizer=opt)
    assert {w.dtype for w in model.weights} == {np.dtype(np.float64)}
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert opt.grad_dtypes == {np.dtype(np.float64)}
    assert model.predict(x).dtype == np.float64


def test_integer_inputs_are_promoted():
    x = np.arange(12).reshape(6, 2)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    model = _model()
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    assert model.predict(x).dtype == np.float32
    assert {w.dtype for w in model.weights} == {np.dtype(np.float32)}


# --------------------------------------------------------------- non-finite losses


class _WeightRecorder(Callback):
    def __init__(self):
        self.after_batch: list[list[np.ndarray]] = []

    def on_batch_end(self, batch, logs):
        self.after_batch.append([np.array(w, copy=True) for w in self.model.weights])


def test_exploding_training_stops_and_keeps_the_last_good_weights():
    """lr = 1e6 with MSE: the loss overflows within a few batches."""
    set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((50, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 50)]
    model = SequentialModel([Dense(4, 8), LeakyReLU(), Dense(8, 3)])
    model.compile(BasicOptimizer(1e6), MeanSquaredError(), CategoricalAccuracy())
    recorder = _WeightRecorder()
    with (
        warnings.catch_warnings(record=True) as caught,
        np.errstate(over="ignore", invalid="ignore"),
    ):
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=5, batch_size=5, verbose=0, callbacks=[recorder])
    stops = [w for w in caught if "stopped" in str(w.message)]
    assert len(stops) == 1
    assert issubclass(stops[0].category, RuntimeWarning)
    failed_batch = len(recorder.after_batch) + 1  # 1-based index of the batch that blew up
    assert 2 <= failed_batch <= 10  # it did blow up, within the first epoch
    message = str(stops[0].message)
    assert f"epoch 1, batch {failed_batch}/10" in message
    assert "the loss is" in message
    assert "from before" in message
    assert model.stop_training is True
    for w, good in zip(model.weights, recorder.after_batch[-1]):
        np.testing.assert_array_equal(w, good)
    assert all(np.all(np.isfinite(w)) for w in model.weights)
    assert history == {}  # no partial epoch is reported


def test_exploding_adam_never_makes_nan_weights():
    set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((50, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 50)]
    model = SequentialModel([Dense(4, 8), LeakyReLU(), Dense(8, 3)])
    model.compile(Adam(1e6), MeanSquaredError(), CategoricalAccuracy())
    recorder = _WeightRecorder()
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        model.fit(x, y, epochs=2, batch_size=5, verbose=0, callbacks=[recorder])
    assert all(np.all(np.isfinite(w)) for w in model.weights)
    for w, good in zip(model.weights, recorder.after_batch[-1]):
        np.testing.assert_array_equal(w, good)


def test_non_finite_gradient_with_a_finite_loss_stops_before_the_update():
    """x = 3e38 with zero weights: the loss is 1, but dL/dw = sum_b x_b * J_b overflows float32."""
    model = SequentialModel([Dense(2, 1, initializer="zero")])
    model.compile(BasicOptimizer(0.1), MeanSquaredError(), CategoricalAccuracy())
    x = np.full((4, 2), 3e38, dtype=np.float32)
    y = np.ones((4, 1), dtype=np.float32)
    before = [np.array(w, copy=True) for w in model.weights]
    with (
        pytest.raises(NonFiniteLossError, match="a gradient has NaN or infinite entries"),
        np.errstate(over="ignore"),
    ):
        model.batch_step(x, y)
    with (
        warnings.catch_warnings(record=True) as caught,
        np.errstate(over="ignore", invalid="ignore"),
    ):
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=2, batch_size=2, verbose=0, shuffle=False)
    messages = [str(w.message) for w in caught if "stopped" in str(w.message)]
    assert len(messages) == 1
    assert "epoch 1, batch 1/2" in messages[0]
    assert "a gradient has NaN or infinite entries" in messages[0]
    assert history == {}
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w, b)
