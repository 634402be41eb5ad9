"""sweeps.record.logs: each Tune trial's output kept by the driver and written whole to
<run>/logs/<trial>.txt, read back from the real files. tests/sweeps/cli/test_logs.py has
whole runs' logs and `sweeps logs`."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.place import Place
from sweeps.record.events import Configuration
from sweeps.record.logs import LIMIT, TrialLogs, naming_log


def alone(trial_id: str, index: int) -> Configuration:
    """A configuration its Tune trial trains alone."""
    return Configuration(trial_id, index, {}, trial_id, 0, 1)


def fused(group: str, position: int, index: int) -> Configuration:
    """The configuration at `position` of a Tune trial that trains two."""
    return Configuration(f"{group}-{position}", index, {}, group, position, 2)


@pytest.fixture
def logs(tmp_path: Path) -> TrialLogs:
    return TrialLogs(Place.of(tmp_path))


def text_of(tmp_path: Path, group: str) -> str:
    return (tmp_path / "logs" / f"{group}.txt").read_text()


def test_a_trial_that_printed_nothing_has_no_file(logs: TrialLogs, tmp_path: Path) -> None:
    logs.started(alone("t_00000", 0), retry=False)
    logs.add("t_00000", "")
    assert logs.write("t_00000") is None
    logs.flush()
    assert not (tmp_path / "logs").exists()


def test_a_trial_of_one_configuration_names_it_first(logs: TrialLogs, tmp_path: Path) -> None:
    logs.started(alone("t_00003", 3), retry=False)
    logs.add("t_00003", "epoch 1\n")
    logs.add("t_00003", "epoch 2\n")
    assert logs.write("t_00003") == str(tmp_path / "logs" / "t_00003.txt")
    assert text_of(tmp_path, "t_00003") == (
        "# Tune trial t_00003 trained configuration t_00003 (config_index 3)\nepoch 1\nepoch 2\n"
    )


def test_a_fused_trials_file_names_its_configurations_in_their_order(
    logs: TrialLogs, tmp_path: Path
) -> None:
    logs.started(fused("t_00001", 1, 5), retry=False)  # started in any order
    logs.started(fused("t_00001", 0, 4), retry=False)
    logs.add("t_00001", "both\n")
    logs.write("t_00001")
    assert text_of(tmp_path, "t_00001") == (
        "# Tune trial t_00001 trained configurations t_00001-0 (config_index 4), t_00001-1"
        " (config_index 5) in one process: what follows is all of theirs\nboth\n"
    )


def test_output_before_any_configuration_started_names_the_trial(
    logs: TrialLogs, tmp_path: Path
) -> None:
    logs.add("t_00002", "import noise\n")
    logs.write("t_00002")
    assert text_of(tmp_path, "t_00002") == (
        "# Tune trial t_00002 trained configuration t_00002\nimport noise\n"
    )


def test_a_file_is_written_again_only_when_its_trial_printed_more(
    logs: TrialLogs, tmp_path: Path
) -> None:
    logs.started(alone("t_00000", 0), retry=False)
    logs.add("t_00000", "one\n")
    uri = logs.write("t_00000")
    path = tmp_path / "logs" / "t_00000.txt"
    path.write_text("left alone")  # were it written again, this would be gone
    assert logs.write("t_00000") == uri and path.read_text() == "left alone"
    logs.add("t_00000", "two\n")
    logs.write("t_00000")
    assert path.read_text().endswith("\none\ntwo\n")


def test_flush_writes_the_trials_not_yet_written(logs: TrialLogs, tmp_path: Path) -> None:
    for group in ("t_00000", "t_00001", "t_00002"):
        logs.started(alone(group, int(group[-1])), retry=False)
        logs.add(group, f"{group} says\n")
    logs.write("t_00001")
    (tmp_path / "logs" / "t_00001.txt").write_text("written before")
    logs.flush()
    assert text_of(tmp_path, "t_00000").endswith("\nt_00000 says\n")
    assert text_of(tmp_path, "t_00002").endswith("\nt_00002 says\n")
    assert text_of(tmp_path, "t_00001") == "written before"


def test_a_retried_trial_is_marked_where_it_starts_again(logs: TrialLogs, tmp_path: Path) -> None:
    configuration = alone("t_00000", 0)
    logs.started(configuration, retry=True)  # nothing printed yet: nothing to part
    logs.started(configuration, retry=False)
    logs.add("t_00000", "first try")  # no newline at its end
    logs.started(configuration, retry=True)
    logs.started(configuration, retry=True)  # retried again before printing: marked once
    logs.add("t_00000", "second try\n")
    logs.started(configuration, retry=True)
    logs.write("t_00000")
    body = text_of(tmp_path, "t_00000").split("\n", 1)[1]
    again = "# --- the trial starts again ---\n"
    assert body == f"first try\n{again}second try\n{again}"


def test_only_the_last_characters_are_kept_and_the_file_says_how_many_went(
    logs: TrialLogs, tmp_path: Path
) -> None:
    logs.started(alone("t_00000", 0), retry=False)
    logs.add("t_00000", "a" * LIMIT)
    logs.add("t_00000", "tail")
    logs.write("t_00000")
    header, cut, body = text_of(tmp_path, "t_00000").split("\n", 2)
    assert header == "# Tune trial t_00000 trained configuration t_00000 (config_index 0)"
    assert cut == "# (its first 4 characters are left out)"
    assert body == "a" * (LIMIT - 4) + "tail"
    logs.add("t_00000", "xy")  # what is left out adds up
    logs.write("t_00000")
    _, cut, body = text_of(tmp_path, "t_00000").split("\n", 2)
    assert cut == "# (its first 6 characters are left out)"
    assert len(body) == LIMIT and body.endswith("tailxy")


@pytest.mark.parametrize(
    ("error", "log", "line"),
    [
        ("ValueError: x", "/r/logs/t.txt", "ValueError: x (traceback in /r/logs/t.txt)"),
        ("ValueError: x", None, "ValueError: x"),  # it printed nothing: no file to name
        (None, "/r/logs/t.txt", None),  # it did not fail
    ],
)
def test_a_failed_configurations_error_names_its_log(
    error: str | None, log: str | None, line: str | None
) -> None:
    assert naming_log(error, log) == line
