"""What a trial tells the driver: encoded on the trial's side, decoded on the driver's."""

from __future__ import annotations

from sweeps.record.protocol import EPOCH, decode, encode


def test_protocol_puts_a_single_members_metrics_on_top_for_schedulers() -> None:
    assert encode(EPOCH, [{"val_accuracy": 0.9}])["val_accuracy"] == 0.9
    assert "val_accuracy" not in encode(EPOCH, [{"val_accuracy": 0.9}] * 2)
    assert decode({"kind": "epoch"}) is None and decode({"val_accuracy": 1}) is None
