"""The embedded catalog read and labelled through its database: the same answers as through tiled,
labels that tiled sees as metadata revisions, and metadata commands that import no heavy stack.

Real runs written by TiledWriter into a real embedded catalog; tiled's own client is the referee.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage.catalog_db import open_catalog_db
from storage.labels import LABEL_KEY, label_history, label_runs, list_runs

REPO_ROOT = Path(__file__).resolve().parent.parent
CLASSES = {"space_group": ("Pm-3m", "P6_3/mmc", "Pc"), "dimensionality": ("0D", "2D", "3D")}
#: Modules a metadata-only command must not import: tiled's server and catalog adapter (dask,
#: pandas, xarray, SQLAlchemy), bluesky-tiled-plugins' run classes, the acquisition and ML stacks.
HEAVY = ("tiled.server", "tiled.catalog", "tiled.adapters", "bluesky_tiled_plugins", "dask", "pandas", "xarray",
         "sqlalchemy", "fastapi", "torch", "bluesky", "ophyd", "prefect", "zmq")


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalog-db-home")


@pytest.fixture
def home(module_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XRD_AGENT_HOME", str(module_home))
    monkeypatch.delenv("XRD_AGENT_TILED_URI", raising=False)
    return module_home


@pytest.fixture(scope="module")
def runs(module_home: Path) -> dict[str, str]:
    """A bp.scan, a run closed with its outcome in the stop reason, and one with a class only in its decisions."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer
    from tests.test_storage_labels import closes_with

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XRD_AGENT_HOME", str(module_home))
        RE = RunEngine({})
        subscribe_writer(RE, open_catalog())
        bl = make_beamline(sample="CsPbBr3", seed=1)
        (plain,) = RE(bp.scan([bl.detector], bl.motor, 20.0, 25.0, 6), sample="CsPbBr3")
        (outcome,) = RE(closes_with("class Pm-3m (0.973); top3 Pm-3m 0.973; stop: settled; fallback points: 0"))
        (decided,) = RE(closes_with("", label="Pc"))
    return {"plain": plain, "outcome": outcome, "decided": decided}


def test_listing_equals_tiled_and_labels_are_tiled_revisions(home, runs) -> None:
    from storage.catalog import open_catalog

    assert open_catalog_db(home / "tiled" / "catalog.db") is not None
    catalog = open_catalog()
    assert list_runs() == list_runs(catalog=catalog)  # every column, the decisions-only class included
    assert {r.predicted for r in list_runs()} == {None, "Pm-3m", "Pc"}

    label_runs([runs["plain"][:8], runs["decided"]], space_group="P63/mmc", by="db", classes=CLASSES, now=lambda: 100.0)
    label_runs([runs["plain"]], space_group="Pm-3m", by="db", classes=CLASSES, now=lambda: 200.0)
    # tiled itself sees the label in the metadata, finds it by search and keeps the earlier one as a revision
    assert catalog[runs["plain"]].metadata["start"][LABEL_KEY]["space_group"] == "Pm-3m"
    assert [h["space_group"] for h in label_history(runs["plain"], catalog)] == ["P6_3/mmc", "Pm-3m"]
    for labelled, after in ((True, None), (False, None), (True, 150.0)):
        through_db = list_runs(labelled=labelled, labelled_after=after)
        assert through_db == list_runs(labelled=labelled, catalog=catalog, labelled_after=after)
    assert [r.uid for r in list_runs(labelled=True, labelled_after=150.0)] == [runs["plain"]]
    # the rest of the start document is untouched
    assert catalog[runs["decided"]].metadata["start"]["sample"] == "MAPbI3"


def test_an_unknown_key_or_class_writes_nothing(home, runs) -> None:
    before = list_runs()
    with pytest.raises(KeyError, match="nothing was written"):
        label_runs([runs["outcome"], "fffffff"], space_group="Pc", by="db", classes=CLASSES)
    with pytest.raises(ValueError, match="nothing was written"):
        label_runs([runs["outcome"]], space_group="P4/nmm", by="db", classes=CLASSES)
    assert list_runs() == before


def test_an_unknown_schema_goes_through_tiled(home, runs, tmp_path: Path) -> None:
    copy = tmp_path / "catalog.db"
    shutil.copy(home / "tiled" / "catalog.db", copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE alembic_version SET version_num = 'f00000000000'")
    assert open_catalog_db(copy) is None
    assert open_catalog_db(tmp_path / "absent.db") is None


def command_modules(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str], str]:
    """Run `xrd-agent ARGV` in a fresh interpreter; its exit code, the heavy modules it imported, stderr."""
    probe = (
        "import json, sys\nfrom cli.main import main\ncode = main(sys.argv[1:])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r}))\n"
        "print(json.dumps([code, heavy]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    code, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    return code, heavy, done.stderr


def test_runs_and_label_import_no_heavy_stack(home, runs) -> None:
    import os

    env = {**os.environ, "XRD_AGENT_HOME": str(home)}
    env.pop("XRD_AGENT_TILED_URI", None)
    for argv in (["runs"], ["runs", "--labelled", "--json"], ["label", runs["outcome"][:8], "--space-group", "pm-3m"]):
        code, heavy, err = command_modules(argv, env)
        assert code == 0, err
        assert heavy == [], f"xrd-agent {' '.join(argv)} imported {sorted({m.split('.')[0] for m in heavy})}"
