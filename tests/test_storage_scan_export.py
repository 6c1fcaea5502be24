"""The columnar scan export: written by the catalog writer at each stop, read for many runs at once,
equal to reading each run by itself, and never trusted when it is not whole.

Real bp.scan runs written by the spooled TiledWriter into a real embedded catalog.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import storage.scans
from storage.labels import label_runs
from storage.scan_export import append_scans, read_exported
from storage.scans import labelled_scans, run_sample, scan_arrays

CLASSES = {"space_group": ("Pm-3m", "P6_3/mmc"), "dimensionality": ("0D", "3D")}


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export-home")


@pytest.fixture
def catalog(module_home: Path, monkeypatch: pytest.MonkeyPatch):
    from storage.catalog import open_catalog

    monkeypatch.setenv("XRD_AGENT_HOME", str(module_home))
    return open_catalog()


@pytest.fixture(scope="module")
def uids(module_home: Path) -> list[str]:
    """Three labelled runs: two samples named in the start document, one only in the detector's configuration."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XRD_AGENT_HOME", str(module_home))
        catalog = open_catalog()
        RE = RunEngine({})
        subscribe_writer(RE, catalog)
        made = []
        for sample, n, md in (("CsPbBr3", 12, {"sample": "CsPbBr3"}), ("Cs3Bi2I9", 7, {"sample": "Cs3Bi2I9"}),
                              ("CsPbBr3", 9, {})):
            bl = make_beamline(sample=sample, seed=len(made))
            (uid,) = RE(bp.scan([bl.detector], bl.motor, 20.0, 24.0, n), **md)
            made.append(uid)
        label_runs(made, space_group="Pm-3m", by="test", catalog=catalog, classes=CLASSES)
    return made


def test_export_equals_each_run_read_by_itself(catalog, uids) -> None:
    exported = read_exported(catalog.parent, uids)
    assert sorted(exported) == sorted(uids)
    for uid in uids:
        run = catalog[uid]
        x, y = scan_arrays(run)
        ex, ey, sample = exported[uid]
        np.testing.assert_array_equal(ex, x)
        np.testing.assert_array_equal(ey, y)
        assert sample == run_sample(run) == ("Cs3Bi2I9" if uid == uids[1] else "CsPbBr3")


def test_labelled_runs_are_read_from_the_export_not_run_by_run(catalog, uids, monkeypatch) -> None:
    def one_by_one(*args, **kwargs):
        raise AssertionError("a run was read by itself although it is in the export")

    monkeypatch.setattr(storage.scans, "scan_arrays", one_by_one)
    scans = labelled_scans(catalog, "space_group")
    assert sorted(s.uid for s in scans) == sorted(uids)
    assert {s.uid: s.two_theta.size for s in scans} == {uids[0]: 12, uids[1]: 7, uids[2]: 9}


def test_a_run_exported_twice_is_read_by_itself(catalog, uids, tmp_path: Path) -> None:
    x, y = scan_arrays(catalog[uids[1]])
    append_scans(catalog.parent, [(uids[1], x[:3], y[:3], "wrong")])  # a second, different copy
    assert uids[1] not in read_exported(catalog.parent, uids)
    scans = {s.uid: s for s in labelled_scans(catalog, "space_group", cache_dir=tmp_path)}
    np.testing.assert_array_equal(scans[uids[1]].two_theta, x)
    assert scans[uids[1]].sample == "Cs3Bi2I9"
    assert read_exported(catalog.parent, []) == {}


def test_runs_in_the_cache_are_not_read_again(catalog, uids, tmp_path: Path, monkeypatch) -> None:
    first = {s.uid: s for s in labelled_scans(catalog, "space_group", cache_dir=tmp_path)}
    asked: list[list[str]] = []
    export_read = storage.scans._exported
    monkeypatch.setattr(storage.scans, "_exported", lambda cat, wanted: asked.append(wanted) or export_read(cat, wanted))
    again = {s.uid: s for s in labelled_scans(catalog, "space_group", cache_dir=tmp_path)}
    assert asked == [[]]  # a session's run start: every labelled run from the cache, no export read
    assert sorted(again) == sorted(first) == sorted(uids)
    for uid in uids:
        np.testing.assert_array_equal(again[uid].intensity, first[uid].intensity)
        assert again[uid].sample == first[uid].sample
