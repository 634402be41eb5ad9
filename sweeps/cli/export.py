"""`sweeps export`: a configuration's trained model, from a run kept with checkpoints.

Joined to the `sweeps` app by sweeps.cli.app. torch is imported only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweeps.cli.console import say

app = typer.Typer()


@app.command("export")
def export(
    run_dir: Annotated[str, typer.Argument(metavar="RUN", help="The run directory or URI.")],
    config_id: Annotated[
        str, typer.Argument(metavar="CONFIG", help="The configuration's trial_id in the rows.")
    ],
    which: Annotated[
        str | None,
        typer.Option(
            metavar="best|last",
            help="The best epoch's weights or the last's. \\[default: best where the run"
            " kept it, else last]",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="The file to write. \\[default: CONFIG-WHICH.pt here]"),
    ] = None,
) -> None:
    """Write a configuration's trained model, from a run kept with checkpoints.

    The run needs `checkpoint: last` or `best` in its spec (or `--set checkpoint=best`).

    The file holds the config, the weights and each epoch's metrics.

    Python: `sweeps.load_model(RUN, CONFIG)` gives the model as a torch module.

    Example:

        sweeps export results/my-sweep/RUN_ID 81746_00003 --output model.pt
    """
    from analysis.place import Place
    from analysis.rundir import RunDir
    from sweeps.runs.checkpoints import checkpoint_file, read_checkpoint
    from trainers.checkpoint import model_state, to_bytes

    path = checkpoint_file(RunDir.of(run_dir).place, config_id, which)
    state = read_checkpoint(path)
    name = path.name.removesuffix(".pt")
    target = output if output is not None else Path(f"{config_id}-{name}.pt")
    Place.of(target).write_bytes(to_bytes(model_state(state)))
    metrics = state["history"][-1] if state["history"] else {}
    shown = "  ".join(f"{key} {metrics[key]:.4f}" for key in ("val_accuracy", "val_loss")
                      if isinstance(metrics.get(key), float))  # fmt: skip
    say(f"{config_id} {name}: epoch {state['epoch']} of {state['config']['epochs']}"
        f"{'  ' + shown if shown else ''} -> {target}")  # fmt: skip
