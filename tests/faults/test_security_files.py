"""Nothing unpickled from a model file; nothing from metadata, labels or sample names used as a path outside its folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli.main import main


class _CreatesFile:
    """Unpickling this creates ``path``: the proof that something was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file()}


def test_a_model_whose_weights_carry_a_pickle_is_refused_without_unpickling(tmp_path: Path) -> None:
    import torch

    import models
    from models.classifier import Classifier
    from models.model_files import WEIGHTS_FILE

    model_dir = tmp_path / "model"
    models.load_default("space_group").save(model_dir)
    marker = tmp_path / "unpickled"
    torch.save({"weights": torch.zeros(3), "payload": _CreatesFile(marker)}, model_dir / WEIGHTS_FILE)
    with pytest.raises(ValueError) as refused:
        Classifier.load(model_dir)
    assert not marker.exists(), "the model file's pickle was unpickled"
    assert "not a readable safetensors file" in str(refused.value)


@pytest.fixture(scope="module")
def classifier():
    import torch

    import models

    torch.set_num_threads(1)
    return models.load_default("space_group")


def test_a_sample_name_label_and_uid_reaching_outside_are_never_paths(
    classifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bluesky import RunEngine
    from event_model import compose_run

    from agent.callback import LocalAgent
    from plans.adaptive import adaptive_scan
    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer
    from storage.spool import SpooledWriter

    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # a traversal of three levels from here would land in tmp_path
    catalog = open_catalog()
    RE = RunEngine({})
    subscribe_writer(RE, catalog)
    beamline = make_beamline(sample="CsPbBr3", seed=0)
    hostile = "../../../escaped"
    (uid,) = RE(adaptive_scan([beamline.detector], beamline.motor, start=10.0, stop=12.0,
                              agent=LocalAgent(classifier), md={"sample": hostile, "operator": "/etc/escaped"}))

    assert main(["label", uid, "--space-group", "Pm-3m", "--by", hostile]) == 0
    assert main(["report", uid]) == 0
    from patterns.data_home import xrd_agent_home

    assert _files(tmp_path) == set()  # nothing where the hostile names point, nor in the working folder
    assert (xrd_agent_home() / "reports" / f"report-{uid[:8]}.png").is_file()  # the report's own place

    # a start document whose uid is a path: its spool file stays inside the spool folder
    spool = tmp_path / "spool"
    writer = SpooledWriter(catalog, spool, stop_wait_s=5)
    bundle = compose_run(uid=hostile + "/x", metadata={"sample": hostile})
    writer("start", bundle.start_doc)
    writer("stop", bundle.compose_stop())
    assert all(path.parent == spool for path in spool.iterdir()), list(spool.iterdir())
    assert not (tmp_path / "escaped").exists() and not Path("/etc/escaped").exists()
    shutil.rmtree(spool)
