"""Each activation's backward written into a given (strided) tensor equals its backward."""

from __future__ import annotations

import pytest
import torch

from trainers.activations import ACTIVATIONS


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_into_a_strided_view_equals_backward(name: str) -> None:
    activation = ACTIVATIONS[name]
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(3, 6, 5, generator=generator)
    grad = torch.randn(3, 6, 5, generator=generator)
    a = activation.forward(z.clone())
    # The fused trainer writes (K, batch, width) gradients into a (batch, K, width) buffer.
    out = torch.full((6, 3, 5), float("nan")).transpose(0, 1)
    activation.backward_into(grad, a, out)
    assert torch.equal(out, activation.backward(grad, a))
