from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainers.activations import ACTIVATIONS
from trainers.models import CNN, MLP, build_model, parameter_count

CPU = torch.device("cpu")


def mlp(hidden: tuple[int, ...], activation: str = "relu", seed: int = 0, inputs: int = 784) -> MLP:
    return MLP(
        inputs, hidden, activation, "glorot_uniform", torch.Generator().manual_seed(seed), CPU
    )


@pytest.mark.parametrize(
    ("hidden", "params"),
    [
        ((64,), 50_890),  # model A
        ((50, 50), 42_310),  # Q1a
        ((200, 200), 199_210),  # Q1b
        ((1000, 1000), 1_796_010),  # Q1c
        ((1000,) * 3, 2_797_010),  # Q2
        ((1000,) * 5, 4_799_010),  # Q3-Q9
        ((600,) * 5, 1_919_410),  # Q10
    ],
)
def test_report_parameter_counts(hidden: tuple[int, ...], params: int) -> None:
    assert parameter_count(mlp(hidden)) == params


def test_keras_initialisation_limits() -> None:
    model = MLP(784, (64,), "relu", "he_uniform", torch.Generator().manual_seed(0), CPU)
    hidden_weight, output_weight = model.weights
    he_limit, glorot_limit = math.sqrt(6 / 784), math.sqrt(6 / (64 + 10))
    assert hidden_weight.abs().max() <= he_limit
    assert hidden_weight.abs().max() > 0.99 * he_limit  # uniform over the whole range
    assert output_weight.abs().max() <= glorot_limit  # the output layer stays glorot
    assert output_weight.abs().max() > 0.9 * glorot_limit
    assert all(bias.count_nonzero() == 0 for bias in model.biases)


def autograd_reference(
    model: MLP, activation: str, x: torch.Tensor, labels: torch.Tensor, loss: str
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The same network written with differentiable torch functions."""
    functions = {
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
        "tanh": torch.tanh,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.2),
        "elu": F.elu,
        "selu": F.selu,
        "exponential": torch.exp,
        "linear": lambda z: z,
        "softmax": lambda z: torch.softmax(z, 1),
    }
    params = [p.clone().requires_grad_() for p in model.params]
    h = x
    for i in range(0, len(params) - 2, 2):
        h = functions[activation](h @ params[i] + params[i + 1])
    logits = h @ params[-2] + params[-1]
    if loss == "mse":
        one_hot = F.one_hot(labels, 10).float()
        value = (torch.softmax(logits, 1) - one_hot).square().mean(1).mean()
    else:
        value = F.cross_entropy(logits, labels)
    return logits.detach(), list(torch.autograd.grad(value, params))


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "mse"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_hand_written_gradients_match_autograd(activation: str, loss: str) -> None:
    torch.manual_seed(1)
    model = mlp((32, 16), activation, inputs=20)
    x, labels = torch.rand(8, 20), torch.randint(0, 10, (8,))
    logits = torch.empty(8, 10)
    grads = model.gradients(x, F.one_hot(labels, 10).float(), logits, loss)
    expected_logits, expected_grads = autograd_reference(model, activation, x, labels, loss)
    torch.testing.assert_close(logits, expected_logits)
    assert len(grads) == len(expected_grads) == 6
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(model.forward(x), expected_logits)


def test_gradients_follow_batch_size_changes() -> None:
    """The last batch of an epoch is smaller; gradients must use its own size."""
    model = mlp((16,), "sigmoid", inputs=20)
    labels = torch.randint(0, 10, (8,))
    x = torch.rand(8, 20)
    model.gradients(
        x, F.one_hot(labels, 10).float(), torch.empty(8, 10), "categorical_crossentropy"
    )
    grads = model.gradients(
        x[:3], F.one_hot(labels[:3], 10).float(), torch.empty(3, 10), "categorical_crossentropy"
    )
    _, expected = autograd_reference(
        model, "sigmoid", x[:3], labels[:3], "categorical_crossentropy"
    )
    for grad, reference in zip(grads, expected, strict=True):
        torch.testing.assert_close(grad, reference, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["cnn1", "cnn2", "cnn3"])
def test_cnns_build_and_run(name: str) -> None:
    model = CNN(name, (28, 28), torch.Generator().manual_seed(0), CPU)
    images = torch.rand(4, 28, 28)
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.empty(4, 10)
    grads = model.gradients(
        model.inputs(images), F.one_hot(labels, 10).float(), logits, "categorical_crossentropy"
    )
    assert logits.isfinite().all()
    assert [g.shape for g in grads] == [p.shape for p in model.params]
    assert all(g.abs().sum() > 0 for g in grads)
    torch.testing.assert_close(model.forward(model.inputs(images)), logits)


def test_cnn_layer_shapes_follow_the_report() -> None:
    def shapes(name: str) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in CNN(name, (28, 28), torch.Generator(), CPU).params[::2]]

    # CNN1: 28 -conv3-> 26 -pool-> 13 -conv3-> 11 -conv3-> 9 -pool-> 4; 4*4*64 = 1024 inputs.
    assert shapes("cnn1") == [(32, 1, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3), (100, 1024), (10, 100)]
    # CNN2 ends at 1x1x256, CNN3 at 2x2x256.
    assert shapes("cnn2")[-2:] == [(512, 256), (10, 512)]
    assert shapes("cnn3")[:2] == [(64, 1, 5, 5), (64, 64, 5, 5)]
    assert shapes("cnn3")[-2:] == [(512, 1024), (10, 512)]


def test_cnn_rejects_images_too_small() -> None:
    with pytest.raises(ValueError, match="needs larger images"):
        build_model("cnn2", (8, 8), (), "relu", "glorot_uniform", torch.Generator(), CPU)
