"""Load MNIST and preprocess it for an MLP (the course stencil's ``preprocess.py``).

The data is found as ``beras.datasets.mnist.load_data()`` finds it: ``$BERAS_DATA/mnist``,
``~/.beras/datasets/mnist``, ``/usr/share/datasets/mnist``, else a verified download.
"""

from __future__ import annotations

from beras.core import Tensor
from beras.datasets import mnist
from beras.training import prepare_images


def load_and_preprocess_data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MNIST as ``(train_inputs, train_labels, test_inputs, test_labels)``.

    Inputs are flattened to ``(N, 784)`` and scaled to [0, 1] (float32); labels are the
    digits, shape ``(N,)`` (not one-hot). All are Tensors, in the dataset's order (no
    shuffling): 60,000 training then 10,000 test samples.
    """
    (train_x, train_y), (test_x, test_y) = mnist.load_data()
    return (
        Tensor(prepare_images(train_x)),
        Tensor(train_y),
        Tensor(prepare_images(test_x)),
        Tensor(test_y),
    )
