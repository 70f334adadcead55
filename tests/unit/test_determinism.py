"""set_random_seed(s) followed by the same calls gives bit-identical results, in one process
and across processes."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import textwrap

import pytest

import beras
from beras.utils import get_rng, set_random_seed

TRAINING_SCRIPT = textwrap.dedent(
    '''
    """Train a small model from a seed and print hashes of weights, history and predictions."""
    import hashlib
    import json
    import sys

    import numpy as np

    from beras.activations import LeakyReLU, Softmax
    from beras.layers import Dense
    from beras.losses import CategoricalCrossEntropy
    from beras.metrics import CategoricalAccuracy
    from beras.model import SequentialModel
    from beras.optimizers import Adam
    from beras.utils import set_random_seed


    def _sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()


    def run(seed: int) -> dict:
        set_random_seed(seed)
        # data from NumPy's legacy global state, which set_random_seed also seeds
        x = np.random.normal(size=(90, 6)).astype(np.float32)
        y = np.eye(4, dtype=np.float32)[np.random.randint(0, 4, size=90)]
        model = SequentialModel(
            [Dense(6, 16, initializer="kaiming"), LeakyReLU(), Dense(16, 4, initializer="xavier"), Softmax()]
        )
        model.compile(Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
        history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0)
        predictions = model.predict(x)
        return {
            "weights": _sha(b"".join(np.ascontiguousarray(w).tobytes() for w in model.weights)),
            "history": _sha(json.dumps({k: [v.hex() for v in vs] for k, vs in sorted(history.items())}).encode()),
            "predictions": _sha(predictions.tobytes()),
        }


    if __name__ == "__main__":
        print(json.dumps(run(int(sys.argv[1]))))
    '''
)


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("determinism") / "train_small.py"
    path.write_text(TRAINING_SCRIPT)
    return path


def _in_subprocess(script, seed, hash_seed):
    # the child imports the same beras as this process, installed or not
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(beras.__file__)))
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": python_path}
    result = subprocess.run(
        [sys.executable, str(script), str(seed)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_same_seed_same_results_in_one_process(script):
    run = runpy.run_path(str(script))["run"]
    first, second = run(11), run(11)
    assert first == second
    other = run(12)
    assert all(other[k] != first[k] for k in first)


def test_same_seed_same_results_across_processes(script):
    a = _in_subprocess(script, 11, hash_seed=1)
    b = _in_subprocess(script, 11, hash_seed=2)
    assert a == b
    in_process = runpy.run_path(str(script))["run"](11)
    assert in_process == a


def test_set_random_seed_resets_the_global_generator():
    set_random_seed(5)
    first = get_rng().random(3)
    set_random_seed(5)
    assert (get_rng().random(3) == first).all()


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_set_random_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="set_random_seed expected a non-negative int, got"):
        set_random_seed(bad)
