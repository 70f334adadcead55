"""Each family of names has one table, and everything that offers a name reads it.

A name added to a table (an optimizer, an activation, a dataset, a model) must reach
``get``, the ``beras train`` flags, ``TrainConfig`` and ``config.json`` without a second
list to update; these tests compare each of those with its table.
"""

from __future__ import annotations

import contextlib
import io
import re
import typing

import pytest

from beras import activations, cli, datasets, initializers, optimizers, training
from beras.layers import DENSE_INITIALIZERS


def _choices(flag: str) -> list[str]:
    """The ``{a,b,c}`` a flag of ``beras train`` lists in its usage."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    usage = " ".join(text.getvalue().split("\n\n")[0].split())
    found = re.search(rf"\[{re.escape(flag)} \{{([^}}]*)\}}\]", usage)
    assert found, usage
    return found.group(1).split(",")


def test_the_cli_offers_exactly_the_tables_names() -> None:
    assert _choices("--optimizer") == list(optimizers.OPTIMIZERS)
    assert _choices("--dataset") == list(datasets.DATASETS)
    assert _choices("--model") == list(training.MODELS)
    assert _choices("--lr-schedule") == list(training.SCHEDULES)
    hidden = [name for name in activations.ACTIVATIONS if name != "softmax"]
    assert _choices("--activation") == hidden


@pytest.mark.parametrize("name", list(optimizers.OPTIMIZERS))
def test_each_optimizer_name_builds_with_its_default_learning_rate(name: str) -> None:
    cfg = training.TrainConfig(optimizer=name)
    assert cfg.learning_rate == optimizers.OPTIMIZERS[name].default_learning_rate
    opt = training.build_optimizer(cfg)
    assert opt.learning_rate == cfg.learning_rate
    assert optimizers.get(name).learning_rate == cfg.learning_rate


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
def test_each_activation_name_gives_its_class(name: str) -> None:
    assert type(activations.get(name)) is activations.ACTIVATIONS[name]


def test_the_initializer_names_are_denses_literal_and_the_cli_choices() -> None:
    assert typing.get_args(DENSE_INITIALIZERS) == initializers.INITIALIZER_NAMES
    assert (
        "auto",
        *(n.replace(" ", "_") for n in initializers.INITIALIZER_NAMES),
    ) == training.INITIALIZERS
    for name in training.INITIALIZERS[1:]:  # each CLI spelling is accepted by Dense
        assert initializers.normalize_name(name) in initializers.INITIALIZER_NAMES


@pytest.mark.parametrize("name", list(datasets.DATASETS))
def test_each_dataset_has_a_title(name: str) -> None:
    assert datasets.title(name)
    assert datasets.title(name.replace("-", "_")) == datasets.title(name)


@pytest.mark.parametrize("model", list(training.MODELS))
def test_each_model_name_round_trips_through_config_json(model: str) -> None:
    cfg = training.TrainConfig(model=model, hidden=(8,))
    again, input_size, num_classes, _ = training.TrainConfig.from_json(
        cfg.to_json(784, 10), "config.json"
    )
    assert (again.model, input_size, num_classes) == (model, 784, 10)
    assert training.build_model(again, input_size, num_classes) is not None


def test_config_json_refuses_a_model_no_table_lists() -> None:
    data = training.TrainConfig().to_json(784, 10)
    data["model"] = "transformer"
    with pytest.raises(ValueError, match=r"config.json: .*model must be one of \['mlp'"):
        training.TrainConfig.from_json(data, "config.json")
