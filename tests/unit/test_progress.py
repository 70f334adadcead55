"""Training progress: a live bar on a terminal only, the epoch line always (verbose 1, 2)."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest

from beras.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _epoch(verbose: int, stream: io.StringIO, batches: int = 3) -> str:
    """One epoch of ``batches`` updates, closed with its metrics; what was printed."""
    with contextlib.redirect_stdout(stream):
        progress = Progress(verbose, batches, epoch=0, epochs=2)
        for i in range(batches):
            progress.update({"loss": 1.0 / (i + 1), "acc": 0.5})
        progress.close({"loss": 0.25, "acc": 0.75})
    return stream.getvalue()


EPOCH_LINE = "Epoch 1/2 - loss: 0.2500 - acc: 0.7500\n"


@pytest.fixture(params=["tqdm", "no tqdm"])
def bar_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "no tqdm":
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails
    else:
        pytest.importorskip("tqdm")
    return request.param


def test_a_terminal_gets_a_live_bar_and_the_epoch_line(bar_kind: str) -> None:
    text = _epoch(1, _Terminal())
    assert text.endswith(EPOCH_LINE)
    live = text[: -len(EPOCH_LINE)]
    assert "\r" in live
    assert "Epoch 1/2" in live
    if bar_kind == "tqdm":
        assert "batch" in live  # tqdm's unit
    else:
        assert "\rEpoch 1/2 - batch 3/3 - loss: 0.3333 - acc: 0.5000" in live


def test_a_log_gets_the_epoch_line_only(bar_kind: str) -> None:
    assert _epoch(1, io.StringIO()) == EPOCH_LINE


@pytest.mark.parametrize("stream", [_Terminal, io.StringIO])
def test_verbose_2_prints_the_epoch_line_only_and_0_nothing(
    bar_kind: str, stream: type[io.StringIO]
) -> None:
    assert _epoch(2, stream()) == EPOCH_LINE
    assert _epoch(0, stream()) == ""


def test_an_interrupted_epoch_ends_the_live_line_and_prints_no_epoch_line(
    bar_kind: str,
) -> None:
    stream = _Terminal()
    with contextlib.redirect_stdout(stream):
        progress = Progress(1, 3, epoch=0, epochs=2)
        progress.update({"loss": 1.0})
        progress.close()
        progress.close()  # a second close prints nothing more
    text = stream.getvalue()
    if bar_kind == "no tqdm":
        assert text == "\rEpoch 1/2 - batch 1/3 - loss: 1.0000\n"
    else:
        assert "Epoch 1/2:" in text  # the bar was drawn
        assert "Epoch 1/2 - " not in text  # no epoch line
        assert text.endswith("\r")  # and cleared (leave=False)
