"""analysis.settings: a run's settings, and where a reference's figures were measured under
others. tests/sweeps/cli/test_report_runs.py sees the mark on a real run's report."""

from __future__ import annotations

import copy

import pytest

from analysis.settings import (
    ABSENT,
    SWEPT,
    Difference,
    mark_reference,
    reference_differences,
    run_settings,
)

# A run of report A's preset made on digits for one epoch.
SPEC = {
    "dataset": "digits",
    "base": {"epochs": 1, "hidden": [64, 32], "lr": 0.001},
    "grid": {"batch_size": [64, 32]},
}


def reference(**settings: object) -> dict[str, object]:
    """Report A's batch-size figures, measured under `settings`."""
    return {
        "source": "Report A, table A1",
        "settings": settings,
        "rows": [{"batch_size": 64, "val_accuracy": 0.975}],
    }


@pytest.mark.parametrize(
    ("spec", "settings"),
    [
        (SPEC, {"dataset": "digits", "epochs": 1, "hidden": [64, 32], "lr": 0.001}),
        ({"dataset": None, "base": None}, {}),  # the trainer's own data, no base
        ({"dataset": "mnist", "base": {"dataset": "fashion"}}, {"dataset": "fashion"}),
    ],
)
def test_run_settings_are_the_dataset_and_the_base(
    spec: dict[str, object], settings: dict[str, object]
) -> None:
    assert run_settings(spec) == settings


def test_the_same_settings_make_no_difference() -> None:
    # A YAML list against the spec's list, a float against an int of the same value.
    same = reference(dataset="digits", epochs=1.0, hidden=[64, 32], lr=0.001)
    assert reference_differences(same, SPEC) == []


def test_a_reference_that_does_not_say_its_settings_differs_in_none() -> None:
    unsaid = {"source": "old run", "rows": [{"batch_size": 64, "val_accuracy": 0.9}]}
    assert reference_differences(unsaid, SPEC) == []


def test_differences_name_each_side_a_the_reference_b_the_run() -> None:
    other = reference(dataset="mnist", epochs=20, hidden=(64, 32), optimizer="adam")
    assert reference_differences(other, SPEC) == [
        Difference("dataset", "mnist", "digits", overlap=False),
        Difference("epochs", "20", "1", overlap=False),
        Difference("optimizer", "adam", ABSENT, overlap=False),
        Difference("lr", ABSENT, "0.001", overlap=False),
    ]


def test_a_key_the_run_samples_is_swept_against_the_references_value() -> None:
    sampled = {**SPEC, "sample": {"lr": {"loguniform": [0.0001, 0.1]}}}
    same = reference(dataset="digits", epochs=1, hidden=[64, 32], lr=0.001)
    assert reference_differences(same, sampled) == [Difference("lr", "0.001", SWEPT, overlap=False)]


def test_the_keys_of_the_reference_rows_and_the_seed_are_never_differences() -> None:
    # The rows give batch_size per row; which seed is the reference's business.
    other = reference(dataset="digits", epochs=1, hidden=[64, 32], lr=0.001, batch_size=128,
                      seed=3)  # fmt: skip
    assert reference_differences(other, SPEC) == []


def test_a_reference_under_other_settings_has_its_source_marked() -> None:
    other = reference(dataset="mnist", epochs=20, hidden=[64, 32], lr=0.001)
    untouched = copy.deepcopy(other)
    marked = mark_reference(other, SPEC)
    assert marked["source"] == (
        "Report A, table A1 [other settings: measured with dataset=mnist, epochs=20;"
        " this run has dataset=digits, epochs=1]"
    )
    assert {**marked, "source": other["source"]} == other == untouched  # a copy, the rest kept


def test_a_reference_under_the_same_settings_is_returned_as_it_is() -> None:
    same = reference(dataset="digits", epochs=1, hidden=[64, 32], lr=0.001)
    assert mark_reference(same, SPEC) is same


def test_a_reference_without_a_source_is_marked_as_a_reference() -> None:
    unnamed = {"settings": {"dataset": "mnist"}, "rows": [{"batch_size": 64}]}
    spec = {"dataset": "digits"}
    assert mark_reference(unnamed, spec)["source"] == (
        "reference [other settings: measured with dataset=mnist; this run has dataset=digits]"
    )


def test_a_difference_reads_as_both_sides() -> None:
    assert Difference("epochs", "20", "1", False).text() == "epochs (a: 20; b: 1)"
