"""Analysis of sweep results: pandas DataFrames from the Parquet a run writes.

Knows pandas and matplotlib only (never torch or Ray), so everything here works the same
in a notebook:

    import analysis
    trials, epochs = analysis.load("results/report-a-batch-size/<run id>")  # or a URI
    result = analysis.find_threshold(trials)          # report A's A2 computation
    print("\\n".join(result.lines()))
"""

from analysis.compare import Comparison, Difference, compare_runs, compare_table
from analysis.load import Run, RunDataError, load, load_run, load_runs
from analysis.tables import (
    activation_table,
    batch_size_table,
    config_table,
    report_b_table,
    report_table,
)
from analysis.threshold import Threshold, find_threshold

__all__ = [
    "Comparison",
    "Difference",
    "Run",
    "RunDataError",
    "Threshold",
    "activation_table",
    "batch_size_table",
    "compare_runs",
    "compare_table",
    "config_table",
    "find_threshold",
    "load",
    "load_run",
    "load_runs",
    "report_b_table",
    "report_table",
]
