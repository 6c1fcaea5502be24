"""Runs go to the embedded tiled catalog, read back through databroker v2, and get labelled."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import storage.catalog
from storage.catalog import embedded_paths, open_catalog, subscribe_writer
from storage.labels import LABEL_KEY, label_history, label_run, list_runs

CLASSES = {
    "space_group": ("Fm-3m", "I4/mcm", "P2_1/a", "P-3m1", "P6_3/mmc", "Pc", "Pm-3m"),
    "dimensionality": ("0D", "2D", "3D"),
}


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage-home")


@pytest.fixture(scope="module")
def catalog(module_home: Path):
    """One embedded catalog for the module (opening costs a few seconds on first use)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XRD_AGENT_HOME", str(module_home))
        yield open_catalog()


@pytest.fixture(scope="module")
def scan_uids(catalog) -> list[str]:
    """Two real runs of a plain bp.scan on the simulated beamline, written by TiledWriter."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline

    RE = RunEngine({})
    subscribe_writer(RE, catalog)
    uids = []
    for sample in ("CsPbBr3", "Cs3Bi2I9"):
        bl = make_beamline(sample=sample, seed=0, real_time=False)
        (uid,) = RE(bp.scan([bl.detector], bl.motor, 10.0, 40.0, 151), sample=sample)
        uids.append(uid)
    return uids


def test_home_defaults_to_env(xrd_agent_home: Path) -> None:
    assert storage.catalog.xrd_agent_home() == xrd_agent_home.resolve()
    assert embedded_paths().root == xrd_agent_home.resolve() / "tiled"


def test_plan_reads_back_with_every_event(catalog, scan_uids: list[str]) -> None:
    run = catalog[scan_uids[0]]
    assert run.metadata["start"]["uid"] == scan_uids[0]
    assert run.metadata["start"]["sample"] == "CsPbBr3"
    assert run.metadata["stop"]["exit_status"] == "success"
    assert run.metadata["stop"]["num_events"]["primary"] == 151
    data = run.primary.read()
    tth = np.asarray(data["tth"])
    counts = np.asarray(data["det_counts"])
    assert tth.shape == (151,) and counts.shape == (151,)
    np.testing.assert_allclose(tth, np.linspace(10.0, 40.0, 151), atol=1e-6)
    assert np.all(counts >= 0) and counts.max() > 0
    # The latest run is also reachable the databroker way.
    assert catalog[-1].metadata["start"]["uid"] == scan_uids[-1]


def test_label_is_searchable_with_who_and_when(catalog, scan_uids: list[str]) -> None:
    uid = scan_uids[0]
    before = time.time()
    label = label_run(uid, space_group="Pm-3m", by="alice", catalog=catalog, classes=CLASSES)
    assert label["space_group"] == "Pm-3m"
    assert label["dimensionality"] == "3D"  # implied by the space group
    assert label["by"] == "alice" and label["time"] >= before

    stored = catalog[uid].metadata["start"][LABEL_KEY]
    assert stored == label
    # The stop document written by TiledWriter survives the label write.
    assert catalog[uid].metadata["stop"]["exit_status"] == "success"

    labelled = [r.uid for r in list_runs(labelled=True, catalog=catalog)]
    unlabelled = [r.uid for r in list_runs(labelled=False, catalog=catalog)]
    assert uid in labelled and uid not in unlabelled
    assert scan_uids[1] in unlabelled
    assert {r.uid for r in list_runs(catalog=catalog)} >= set(scan_uids)
    assert [r.uid for r in list_runs(catalog=catalog, labelled_after=label["time"])] == []
    assert uid in [r.uid for r in list_runs(catalog=catalog, labelled_after=before - 1)]

    # Relabelling keeps the earlier label in the revision history.
    label_run(uid, space_group="Fm-3m", by="bob", catalog=catalog, classes=CLASSES)
    history = label_history(uid, catalog=catalog)
    assert [h["space_group"] for h in history if h] == ["Pm-3m", "Fm-3m"]
    assert [h["by"] for h in history if h] == ["alice", "bob"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space_group": "P4/nmm"}, "unknown space group 'P4/nmm'"),
        ({"dimensionality": "1D"}, "unknown dimensionality '1D'"),
        ({"space_group": "P-3m1", "dimensionality": "3D"}, "is 2D, not 3D"),
        ({}, "give a space group"),
        ({"space_group": "Pm-3m", "by": ""}, "labeller name"),
    ],
)
def test_bad_label_is_refused_and_nothing_written(catalog, scan_uids, kwargs, message) -> None:
    uid = scan_uids[1]
    before = dict(catalog[uid].metadata)
    n_revisions = len(catalog[uid].metadata_revisions)
    with pytest.raises(ValueError, match=message):
        label_run(uid, catalog=catalog, classes=CLASSES, **kwargs)
    assert dict(catalog[uid].metadata) == before
    assert LABEL_KEY not in catalog[uid].metadata["start"]
    assert len(catalog[uid].metadata_revisions) == n_revisions


def test_bad_uid_is_refused(catalog) -> None:
    with pytest.raises(ValueError, match="neither a uid, a uid prefix"):
        label_run("6f84d%", space_group="Pm-3m", catalog=catalog, classes=CLASSES)
    with pytest.raises(KeyError, match="no run with uid prefix"):
        label_run("6f84d", space_group="Pm-3m", catalog=catalog, classes=CLASSES)
    with pytest.raises(KeyError, match="no run with uid"):
        label_run("00000000-0000-0000-0000-000000000000", space_group="Pm-3m", catalog=catalog, classes=CLASSES)


def test_fault_mid_scan_keeps_measured_events_and_stop(catalog) -> None:
    """Events buffered by the writer are flushed by the stop document of a failed run."""
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline

    bl = make_beamline(sample="CsPbBr3", seed=0, real_time=False)
    RE = RunEngine({})
    subscribe_writer(RE, catalog)
    uids: list[str] = []
    RE.subscribe(lambda name, doc: uids.append(doc["uid"]) if name == "start" else None)

    def fail_at_20_degrees(detectors, step, pos_cache):
        if step[bl.motor] > 20.0:
            raise RuntimeError("simulated detector fault")
        yield from bps.one_nd_step(detectors, step, pos_cache)

    with pytest.raises(RuntimeError, match="simulated detector fault"):
        RE(bp.scan([bl.detector], bl.motor, 10.0, 30.0, 21, per_step=fail_at_20_degrees))
    run = catalog[uids[-1]]
    assert run.metadata["stop"]["exit_status"] == "fail"
    assert run.metadata["stop"]["num_events"]["primary"] == 11
    np.testing.assert_allclose(np.asarray(run.primary.read()["tth"]), np.arange(10.0, 21.0))


def test_default_validation_uses_the_task_classes(catalog, scan_uids) -> None:
    from patterns.datasets import task_classes

    assert task_classes("space_group") == CLASSES["space_group"]
    assert task_classes("dimensionality") == CLASSES["dimensionality"]
    before = dict(catalog[scan_uids[1]].metadata)
    with pytest.raises(ValueError, match="the champion model knows Fm-3m, I4/mcm"):
        label_run(scan_uids[1], space_group="Pnma", catalog=catalog)
    assert dict(catalog[scan_uids[1]].metadata) == before
