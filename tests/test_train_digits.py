"""The digits example (examples/train_digits.py) end to end, shortened: a network whose every
layer gradient comes from convlab (conv, local / tiled conv, max-pool) must learn. The loss
must fall substantially within a few epochs and the held-out accuracy must clear a threshold
far above chance (0.1), for each first layer the example offers."""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("first_layer", ["conv", "local", "tiled"])
def test_a_short_training_learns(example, first_layer):
    lines = []
    history, layers = example.train(epochs=4, first_layer=first_layer, seed=0, workers=1,
                                    log=lines.append)
    assert len(lines) == 4 and all("test accuracy" in line for line in lines)
    loss = history["loss"]
    assert all(np.isfinite(loss)), loss
    assert loss[-1] < 0.2 * loss[0], loss
    assert history["test_accuracy"][-1] >= 0.85, history["test_accuracy"]
    # every parameter moved away from its initial value: gradients reached every layer
    fresh = example.build(first_layer, seed=0)
    for trained, initial in zip(layers, fresh):
        for name, value in trained.params.items():
            assert not np.array_equal(value, initial.params[name]), (type(trained).__name__, name)


def test_the_loss_gradient_is_the_softmax_minus_the_labels(example):
    """The one gradient the example computes with numpy, against central differences."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 10))
    labels = rng.integers(0, 10, 5)
    _, grad = example.softmax_cross_entropy(logits, labels)
    h = 1e-6
    numeric = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (example.softmax_cross_entropy(up, labels)[0]
                          - example.softmax_cross_entropy(down, labels)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-8)
