"""The state of a training run: everything ``fit`` needs to continue as if it never stopped.

A run state is a flat ``{name: np.ndarray}`` (saved as one ``.npz``, read back with
``allow_pickle=False``):

- ``format``, ``version``, ``epoch`` (epochs completed: the next one to run) and
  ``stop_training`` (a callback asked to stop);
- ``weights/<name>``: every weight, non-trainable ones too, under
  ``Model.weight_names()``;
- ``optimizer/<key>``: ``optimizer.get_state(model.weights)`` (slots indexed like
  ``model.weights``);
- ``rng/shuffle/...``: the generator ``fit`` shuffles with, and ``rng/<layer>/...`` the
  ``rng`` of every layer declaring ``stochastic = True`` (``<layer>`` as in
  ``weight_names``: ``layers.2.Dropout``). A generator's ``bit_generator.state`` dict is
  stored leaf by leaf: strings and arrays as they are, integers (PCG64's are 128-bit)
  as little-endian ``uint64`` words under a name ending in ``#int``;
- ``callbacks/<Class>.<k>/<key>``: ``get_state()`` of each callback that has state,
  ``k`` counting callbacks of the same class.

:func:`capture` builds it, :func:`restore` checks all of it against the model before
changing anything, :func:`save` / :func:`load` write it atomically and read it back.
:class:`~beras.callbacks.BackupAndRestore` is built on these.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from . import checkpoint
from .npzfile import read_npz

__all__ = [
    "FitLoop",
    "RunStateError",
    "capture",
    "generator_state",
    "load",
    "restore",
    "save",
    "set_generator_state",
]

FORMAT = "beras-training-state"
VERSION = 1
_WORD_BITS = 64
_WORD_MASK = (1 << _WORD_BITS) - 1


class RunStateError(ValueError):
    """A training state that cannot be read, or does not fit the run it is restored into."""


@dataclasses.dataclass
class FitLoop:
    """What ``Model.fit`` exposes to its callbacks as ``model.fit_loop`` while it runs.

    ``rng`` is the generator batches are shuffled with, ``callbacks`` every callback of
    this ``fit`` in the order they are called (``History`` first), ``epochs`` the index
    the run ends at and ``initial_epoch`` the epoch it starts at: a callback's
    ``on_train_begin`` may move it (``BackupAndRestore`` does, after restoring).
    """

    rng: np.random.Generator
    callbacks: list[Any]
    epochs: int
    initial_epoch: int = 0


# ------------------------------------------------------------------ generators
def generator_state(gen: np.random.Generator, prefix: str = "") -> dict[str, np.ndarray]:
    """``gen.bit_generator.state`` as flat numeric/string arrays (no pickles), keyed ``prefix + path``."""
    out: dict[str, np.ndarray] = {}
    _flatten(gen.bit_generator.state, "", out)
    return {prefix + k: v for k, v in out.items()}


def _flatten(value: Any, path: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{path}/{key}" if path else str(key), out)
    elif isinstance(value, str):
        out[path] = np.array(value)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        number = int(value)
        if number < 0:
            raise ValueError(f"runstate: cannot store the negative integer {path} = {number}")
        words = []
        while True:
            words.append(number & _WORD_MASK)
            number >>= _WORD_BITS
            if not number:
                break
        out[f"{path}#int"] = np.array(words, dtype=np.uint64)
    elif isinstance(value, np.ndarray):
        out[path] = np.array(value, copy=True)
    else:
        raise TypeError(f"runstate: cannot store {path} of type {type(value).__name__}")


def _unflatten(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in arrays.items():
        *parents, leaf = key.split("/")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key!r} is both a value and a group")
        if leaf.endswith("#int"):
            if value.ndim != 1 or value.dtype != np.uint64 or not value.size:
                raise ValueError(
                    f"{key!r} must be a 1-d uint64 array, got {value.dtype} {value.shape}"
                )
            node[leaf[:-4]] = sum(int(w) << (_WORD_BITS * i) for i, w in enumerate(value))
        elif value.dtype.kind == "U" and value.ndim == 0:
            node[leaf] = str(value)
        else:
            node[leaf] = np.array(value, copy=True)
    return nested


def _checked_generator_state(
    gen: Any, arrays: Mapping[str, np.ndarray], what: str
) -> dict[str, Any]:
    """The state dict for ``gen``, tried on a throwaway bit generator of its type first."""
    if not isinstance(gen, np.random.Generator):
        raise ValueError(f"{what} is not a np.random.Generator (got {type(gen).__name__})")
    if not arrays:
        raise ValueError(f"no state for {what}")
    state = _unflatten(arrays)
    kind = type(gen.bit_generator)
    if state.get("bit_generator") != kind.__name__:
        raise ValueError(
            f"{what} is a {kind.__name__} generator, the state is of a "
            f"{state.get('bit_generator')!r}"
        )
    try:
        kind().state = state
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{what}: not a valid {kind.__name__} state ({err})") from None
    return state


def set_generator_state(gen: np.random.Generator, arrays: Mapping[str, np.ndarray]) -> None:
    """Restore a :func:`generator_state` (with the prefix removed) into ``gen``; checked first."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    gen.bit_generator.state = _checked_generator_state(gen, arrays, "the generator")


def _stochastic_layers(layers: list[Any], prefix: str = "layers") -> Iterator[tuple[str, Any]]:
    for i, layer in enumerate(layers):
        name = f"{prefix}.{i}.{type(layer).__name__}"
        if getattr(layer, "stochastic", False):
            yield name, layer
        inner = getattr(layer, "layers", None)
        if isinstance(inner, list):
            yield from _stochastic_layers(inner, f"{name}.layers")


def _generators(model: Any, loop: FitLoop) -> dict[str, Any]:
    gens: dict[str, Any] = {"shuffle": loop.rng}
    for name, layer in _stochastic_layers(list(model.layers)):
        gens[name] = getattr(layer, "rng", None)
    return gens


# ------------------------------------------------------------------ callbacks
def _stateful_callbacks(callbacks: list[Any]) -> dict[str, Any]:
    """``{"<Class>.<k>": callback}`` for every callback whose ``get_state()`` is not empty."""
    named: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for cb in callbacks:
        get_state = getattr(cb, "get_state", None)
        if get_state is None or not get_state():
            continue
        kind = type(cb).__name__
        named[f"{kind}.{counts.get(kind, 0)}"] = cb
        counts[kind] = counts.get(kind, 0) + 1
    return named


def _group(state: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


# ------------------------------------------------------------------ capture / restore
def capture(model: Any, loop: FitLoop, epoch: int) -> dict[str, np.ndarray]:
    """The run state after ``epoch`` completed epochs (copies: later training changes nothing)."""
    state: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION, dtype=np.int64),
        "epoch": np.array(int(epoch), dtype=np.int64),
        "stop_training": np.array(bool(model.stop_training)),
    }
    for name, w in zip(model.weight_names(), model.weights):
        state[f"weights/{name}"] = np.array(w, copy=True)
    for key, value in model.optimizer.get_state(model.weights).items():
        state[f"optimizer/{key}"] = value
    for name, gen in _generators(model, loop).items():
        if not isinstance(gen, np.random.Generator):
            raise TypeError(
                f"{name} declares stochastic = True but its rng is "
                f"{type(gen).__name__}, not a np.random.Generator: its draws cannot be backed up"
            )
        state.update(generator_state(gen, f"rng/{name}/"))
    for name, cb in _stateful_callbacks(loop.callbacks).items():
        for key, value in cb.get_state().items():
            state[f"callbacks/{name}/{key}"] = value
    return state


def restore(model: Any, state: Mapping[str, Any], loop: FitLoop, where: str = "the state") -> int:
    """Put ``state`` (from :func:`capture`) back into the model, optimizer, generators and
    callbacks of ``loop``; returns the number of epochs it had completed.

    Everything is checked before anything changes: a state from another model,
    optimizer or set of callbacks raises :class:`RunStateError` naming every difference, and
    the model, optimizer, generators and callbacks are left exactly as they were.
    """
    state = {str(k): np.asarray(v) for k, v in state.items()}
    problems = _check(model, state, loop)
    if problems:
        raise RunStateError(
            f"{where} does not fit this training run (nothing was restored): " + "; ".join(problems)
        )
    before = capture(model, loop, 0)
    try:
        _apply(model, state, loop)
    except BaseException:
        _apply(model, before, loop)
        raise
    return int(state["epoch"])


def _check(model: Any, state: dict[str, np.ndarray], loop: FitLoop) -> list[str]:
    """Every problem with ``state``, checked without changing anything."""
    if str(state.get("format", "")) != FORMAT:
        return [f"it is not a Beras training state (no format {FORMAT!r})"]
    version = state.get("version")
    if version is None or version.shape != () or int(version) != VERSION:
        return [f"training state version {version} is not {VERSION}"]
    problems: list[str] = []
    epoch = state.get("epoch")
    if epoch is None or epoch.shape != () or epoch.dtype.kind not in "iu" or int(epoch) < 0:
        problems.append(f"'epoch' must be a non-negative integer, got {epoch!r}")
    stop = state.get("stop_training")
    if stop is None or stop.shape != () or stop.dtype != bool:
        problems.append(f"'stop_training' must be a boolean, got {stop!r}")

    weights = _group(state, "weights/")
    names = model.weight_names()
    missing = [n for n in names if n not in weights]
    unexpected = sorted(set(weights) - set(names))
    if missing:
        problems.append(f"missing weights {missing}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected}")
    for name, w in zip(names, model.weights):
        got = weights.get(name)
        if got is None:
            continue
        if got.shape != w.shape or got.dtype != w.dtype:
            problems.append(
                f"weight {name}: expected {w.dtype} {w.shape}, the state has {got.dtype} {got.shape}"
            )
        elif got.dtype.kind == "f" and not np.isfinite(got).all():
            problems.append(f"weight {name} has NaN or infinite values")

    # the optimizer and callbacks check their own parts: try them on throwaway copies
    problems += _try_on_copy(
        model.optimizer, lambda opt: opt.set_state(_group(state, "optimizer/"), model.weights)
    )

    gens = _generators(model, loop)
    saved_gens = {k.split("/")[1] for k in state if k.startswith("rng/")}
    if saved_gens != set(gens):
        problems.append(
            f"the state has random generators {sorted(saved_gens)}, this run has {sorted(gens)}"
        )
    for name in sorted(saved_gens & set(gens)):
        try:
            _checked_generator_state(gens[name], _group(state, f"rng/{name}/"), name)
        except ValueError as err:
            problems.append(str(err))

    callbacks = _stateful_callbacks(loop.callbacks)
    saved_cbs = {k.split("/")[1] for k in state if k.startswith("callbacks/")}
    if saved_cbs != set(callbacks):
        problems.append(
            f"the state has callbacks {sorted(saved_cbs)}, this run has {sorted(callbacks)}"
        )
    for name in sorted(saved_cbs & set(callbacks)):
        problems += _try_on_copy(
            callbacks[name], lambda cb, n=name: cb.set_state(_group(state, f"callbacks/{n}/"))
        )

    known = ("format", "version", "epoch", "stop_training")
    prefixes = ("weights/", "optimizer/", "rng/", "callbacks/")
    stray = sorted(k for k in state if k not in known and not k.startswith(prefixes))
    if stray:
        problems.append(f"unexpected entries {stray}")
    return problems


def _try_on_copy(obj: Any, set_state: Any) -> list[str]:
    """``set_state(copy of obj)``'s error message, if it raises (``obj`` is never touched)."""
    import copy

    trial = copy.copy(obj)
    # a shallow copy shares the tables set_state replaces: give the copy its own
    for attr, value in vars(obj).items():
        if isinstance(value, (dict, list)):
            setattr(trial, attr, copy.copy(value))
    try:
        set_state(trial)
    except (TypeError, ValueError) as err:
        return [str(err)]
    return []


def _apply(model: Any, state: dict[str, np.ndarray], loop: FitLoop) -> None:
    for name, w in zip(model.weight_names(), model.weights):
        w[...] = state[f"weights/{name}"]
    model.optimizer.set_state(_group(state, "optimizer/"), model.weights)
    for name, gen in _generators(model, loop).items():
        set_generator_state(gen, _group(state, f"rng/{name}/"))
    for name, cb in _stateful_callbacks(loop.callbacks).items():
        cb.set_state(_group(state, f"callbacks/{name}/"))
    model.stop_training = bool(state["stop_training"])


# ------------------------------------------------------------------ files
def save(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Write ``state`` as ``.npz``, atomically: a crash leaves the previous file whole."""
    checkpoint.save(path, state)


def load(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a state written by :func:`save` (no pickles); :class:`RunStateError` if unreadable."""
    path = os.fspath(path)
    try:  # bounded: every header is checked before an array is read
        state = read_npz(path, allow_text=True, max_members=1 << 16)
    except FileNotFoundError:
        raise FileNotFoundError(f"no training state at {path}") from None
    except (OSError, ValueError) as err:
        raise RunStateError(f"{path} is not a readable Beras training state ({err})") from None
    if str(state.get("format", "")) != FORMAT:
        raise RunStateError(f"{path} is not a Beras training state (no format {FORMAT!r})")
    return state
