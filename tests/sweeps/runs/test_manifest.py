"""What a run saves beside its results (the resolved spec, the manifest) and reads back to
resume: real files, and a real local Ray for what the manifest says of the cluster."""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analysis.place import Place
from sweeps import __version__
from sweeps.plan.spec import SpecError, SweepSpec, parse_spec, to_yaml
from sweeps.runs.manifest import new_manifest, now, read_run, write_manifest

RESOLVED = {"name": "digits-sweep", "dataset": "digits", "grid": {"lr": [0.1, 0.01]},
            "resources": {"cpus": 2, "gpus": 0.25}, "max_bundle": 4}  # fmt: skip


def resolved_spec(**changes: Any) -> SweepSpec:
    return parse_spec({**RESOLVED, **changes}, "test")


def saved_run(run_dir: Path, spec: SweepSpec, manifest: dict[str, Any]) -> Place:
    """A run directory as `sweeps run` leaves it, results aside."""
    run_dir.mkdir(exist_ok=True)
    place = Place.of(run_dir)
    (place / "spec.yaml").write_text(to_yaml(spec))
    write_manifest(place, manifest)
    return place


def test_a_run_reads_back_the_spec_and_manifest_it_saved(tmp_path: Path) -> None:
    spec = resolved_spec()
    manifest = {"run_id": "r1", "trials": 2, "started_at": now(), "finished_at": now(),
                "counts": {"TERMINATED": 2}}  # fmt: skip
    place = saved_run(tmp_path / "r1", spec, manifest)
    assert read_run(place) == (spec, manifest)


def test_the_manifest_is_indented_json_with_what_json_lacks_as_text(tmp_path: Path) -> None:
    """A value JSON has no type for (a datetime, a path) is saved as its text, not refused:
    the manifest is written as the run ends, when an error would lose it."""
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    place = Place.of(tmp_path)
    write_manifest(place, {"run_id": "r1", "started_at": when, "where": tmp_path})
    text = (tmp_path / "manifest.json").read_text()
    assert text.startswith('{\n  "run_id": "r1",\n') and text.endswith("}\n")
    assert json.loads(text) == {"run_id": "r1", "started_at": "2024-05-01 12:30:00+00:00",
                                "where": str(tmp_path)}  # fmt: skip


def test_a_manifest_written_again_replaces_the_one_before(tmp_path: Path) -> None:
    """`resume` rewrites it: `finished_at` goes while the run is in progress again."""
    place = Place.of(tmp_path)
    write_manifest(place, {"run_id": "r1", "finished_at": now(), "counts": {"ERROR": 1}})
    write_manifest(place, {"run_id": "r1", "resumed_at": [now()]})
    assert set(json.loads((tmp_path / "manifest.json").read_text())) == {"run_id", "resumed_at"}


def test_times_are_utc_to_the_second() -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    stamp = now()
    after = dt.datetime.now(dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(stamp)
    assert stamp.endswith("+00:00") and parsed.microsecond == 0
    assert before <= parsed <= after


def no_manifest(run_dir: Path) -> None:
    (run_dir / "manifest.json").unlink()


def no_spec(run_dir: Path) -> None:
    (run_dir / "spec.yaml").unlink()


def write(name: str, data: bytes) -> Any:
    return lambda run_dir: (run_dir / name).write_bytes(data)


def unresolved(**changes: Any) -> Any:
    """The spec as a user writes it: what only a run resolves left to resolve."""
    return write("spec.yaml", to_yaml(resolved_spec(**changes)).encode())


DAMAGED = {
    "no spec": (no_spec, "{uri!r} is not a run directory (no spec.yaml)"),
    "no manifest": (no_manifest, "cannot read {uri}/manifest.json: "),
    "spec not UTF-8": (write("spec.yaml", b"name: \xc3\x28\n"), "cannot read {uri}/spec.yaml: "),
    "spec not YAML": (write("spec.yaml", b"name: [unclosed\n"),
                      "{uri}/spec.yaml: not valid YAML"),
    "spec not a spec": (write("spec.yaml", b"name: x\ncolour: red\n"), "{uri}/spec.yaml: "),
    "manifest not JSON": (write("manifest.json", b'{"run_id": '),
                          "{uri}/manifest.json: not valid JSON ("),
    "manifest a list": (write("manifest.json", b"[1, 2]"),
                        "{uri}/manifest.json: not the manifest of a run"),
    "gpus unresolved": (unresolved(resources={"gpus": "auto"}),
                        "{uri}/spec.yaml: not the resolved spec of a run"),
    "max_bundle unresolved": (unresolved(max_bundle="auto"),
                              "{uri}/spec.yaml: not the resolved spec of a run"),
}  # fmt: skip


@pytest.mark.parametrize("case", DAMAGED)
def test_a_run_that_cannot_be_read_back_names_the_file(tmp_path: Path, case: str) -> None:
    damage, says = DAMAGED[case]
    place = saved_run(tmp_path / "r1", resolved_spec(), {"run_id": "r1"})
    damage(tmp_path / "r1")
    with pytest.raises(SpecError) as raised:
        read_run(place)
    assert str(raised.value).startswith(says.format(uri=place.uri)), str(raised.value)


def test_torch_version_is_torchs_own_read_without_importing_torch() -> None:
    # The driver records the version but trains nothing: importing torch cost it 2.3 s.
    script = (
        "import sys; from sweeps.runs.manifest import torch_version; v = torch_version();"
        " print('torch' in sys.modules); import torch; print(v == torch.__version__, v)"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout.split()  # fmt: skip
    assert shown[:2] == ["False", "True"] and "." in shown[2], shown


@pytest.mark.slow  # starts Ray
@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("address", [None, "ray://head:10001"])
def test_a_new_manifest_says_what_ran_where_and_when(address: str | None) -> None:
    import ray
    import torch

    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    manifest = new_manifest(resolved_spec(), "r1", address)
    assert json.loads(json.dumps(manifest)) == manifest  # JSON as it is: nothing saved as text
    given = ("run_id", "sweep", "ray_address", "gpus_per_trial", "cpus_per_trial")
    assert {key: manifest.pop(key) for key in given} == {
        "run_id": "r1",
        "sweep": "digits-sweep",
        "ray_address": address or "embedded",
        "gpus_per_trial": 0.25,
        "cpus_per_trial": 2.0,
    }
    # local_ray's two CPUs; its GPUs are this machine's, each node's kind named once.
    gpus = torch.cuda.device_count()
    devices = manifest.pop("devices")
    assert (devices["cpus"], devices["gpus"], len(devices["gpu_kinds"])) == (2, gpus, min(gpus, 1))
    versions = {"sweeps": __version__, "python": platform.python_version(),
                "torch": torch.__version__, "ray": ray.__version__}  # fmt: skip
    assert {key: manifest.pop(key) for key in versions} == versions
    assert manifest.pop("command") == sys.argv
    assert manifest.pop("ray_gcs_address") == ray.get_runtime_context().gcs_address
    assert dt.datetime.fromisoformat(manifest.pop("started_at")) >= before
    assert manifest.pop("host") and manifest.pop("platform") == platform.platform()
    assert manifest == {}  # no key left unchecked: nothing else goes in unnoticed
