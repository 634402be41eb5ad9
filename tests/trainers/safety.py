"""A check of "capturable" that runs on the CPU: what a CUDA graph cannot hold, caught as
the step runs.

A captured step may not read a tensor back to the host (the value would be baked in, or
capture fails), and every tensor it keeps from one step to the next must stay at its
address (a replay writes where the capture wrote). `GraphSafety` runs code under a
TorchDispatchMode that fails on the ops that sync (`_local_scalar_dense` behind `item()`,
`float()` and `if tensor:`, `nonzero`, `is_nonzero`, `equal`) and on a copy to the CPU,
and blocks `tolist()`/`numpy()`, which bypass the dispatcher. It records every tensor an op
allocates; `leaks()` names those still alive afterwards.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

SYNCING_OPS = {"_local_scalar_dense", "nonzero", "is_nonzero", "item", "equal"}


class NotCapturable(AssertionError):
    pass


class GraphSafety(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.allocated: list[tuple[str, weakref.ref]] = []
        self._patched: dict[str, Any] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in SYNCING_OPS:
            raise NotCapturable(f"{func} reads a tensor back to the host")
        if name == "_to_copy" and str(kwargs.get("device", "")) == "cpu":
            raise NotCapturable(f"{func} copies a tensor to the CPU")
        result = func(*args, **kwargs)
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        for tensor in _tensors(result):
            if tensor.untyped_storage().data_ptr() not in inputs:  # a new allocation
                self.allocated.append((str(func), weakref.ref(tensor)))
        return result

    def __enter__(self) -> GraphSafety:
        for method in ("tolist", "numpy"):
            self._patched[method] = getattr(torch.Tensor, method)
            setattr(torch.Tensor, method, _refuse(method))
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        for method, original in self._patched.items():
            setattr(torch.Tensor, method, original)

    def leaks(self) -> list[str]:
        """The ops whose results are still alive: allocations that outlive the step."""
        gc.collect()
        return [name for name, ref in self.allocated if ref() is not None]


def addresses(tensors: list[torch.Tensor]) -> list[int]:
    return [tensor.data_ptr() for tensor in tensors]


def _refuse(method: str) -> Any:
    def refused(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        raise NotCapturable(f"Tensor.{method}() reads a tensor back to the host")

    return refused


def _tensors(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list | tuple):
        return [tensor for item in tree for tensor in _tensors(item)]
    return []
