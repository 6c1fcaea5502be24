"""The retrain flow end to end: real runs in the embedded catalog, labels, real Prefect runs.

Both gate branches are exercised, a fresh install's first retrain must give the same decision
and reason twice, and two crashes (mid-training, mid-promotion) must leave the registry
byte-for-byte as it was. The gate's rule alone is tests/test_flows_gate.py.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Prefect reads its home when first imported: never let a test run point it at the user's.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="xrd-agent-test-prefect-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from models.champion import champion_cutoff, champion_version, load_champion, promote, registry_snapshot  # noqa: E402
from flows.retrain_log import RETRAIN_LOG, last_consumed  # noqa: E402
from flows.retrain_report import summary_lines  # noqa: E402
from patterns import SPACE_GROUPS as CLASSES  # noqa: E402

#: Tiny training: two members, 100 optimiser steps, 30 simulated patterns per class
#: (about 10 s per flow here); enough to beat a 1-step model clearly on the measured set.
TINY = {"members": 2, "steps": 100, "batch_size": 64, "base_per_class": 30}
#: Training of the deliberately worse challenger (its labels are corrupted in the test).
WORSE = {"members": 1, "steps": 30, "batch_size": 32, "base_per_class": 10}
#: A handful of labelled runs: simulated samples of four classes.
LABELS = {"CsPbBr3": "Pm-3m", "Cs3Bi2Br9": "P-3m1", "Cs2AgBiCl6": "Fm-3m", "MAPbI3": "I4/mcm"}


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flows-home")


@pytest.fixture
def home(module_home: Path, xrd_agent_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """All tests of this module share one catalog (XRD_AGENT_HOME) and pass registries explicitly."""
    monkeypatch.setenv("XRD_AGENT_HOME", str(module_home))
    return module_home


@pytest.fixture(scope="module")
def labelled_uids(module_home: Path) -> list[str]:
    """Real bp.scan runs on the simulated beamline, written by TiledWriter, then labelled."""
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer
    from storage.labels import label_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XRD_AGENT_HOME", str(module_home))
        catalog = open_catalog()
        RE = RunEngine({})
        subscribe_writer(RE, catalog)
        uids = []
        for sample, space_group in LABELS.items():
            bl = make_beamline(sample=sample, seed=1)
            (uid,) = RE(bp.scan([bl.detector], bl.motor, 5.0, 60.0, 276), sample=sample)
            # Every event reads back through databroker v2 before it is labelled.
            data = catalog[uid].primary.read()
            assert data["det_counts"].shape == (276,)
            label_run(uid, space_group=space_group, by="pytest", catalog=catalog)
            uids.append(uid)
    return uids


@pytest.fixture(scope="module")
def weak_champion(module_home: Path):
    """A deliberately weak champion: an untrained network whose output bias makes it answer
    P2_1/a (1 of the 88 measured patterns, none of the held-out part) for everything."""
    import torch

    from models.architectures import build_network, split_members
    from models.classifier import Classifier
    from training.fit import TrainConfig

    config = TrainConfig(n_members=1, width=4, calibrate=False)
    torch.manual_seed(0)
    network = build_network(config.architecture, len(CLASSES), 1, config.width)
    state = split_members(config.architecture, network.state_dict(), 1)[0]
    (bias_name,) = [k for k, v in state.items() if "bias" in k and v.shape[-1:] == (len(CLASSES),)]
    state[bias_name] = torch.zeros_like(state[bias_name])
    state[bias_name][..., CLASSES.index("P2_1/a")] = 1e4
    return Classifier.from_members([state], task="space_group", config=config)


def _artifacts(flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {a.key: a.data for a in artifacts}


def _champion_files(registry: Path) -> dict[str, bytes]:
    """The registry's bytes but the retrain log (which records rejected runs too)."""
    return {k: v for k, v in registry_snapshot(registry).items() if not k.endswith(RETRAIN_LOG)}


def test_promoted_over_a_weak_champion_then_a_worse_challenger_rejected(
    home, prefect_harness, labelled_uids, weak_champion, tmp_path, monkeypatch
) -> None:
    from flows.retrain import retrain_flow

    registry = tmp_path / "registry"
    promote(weak_champion, root=registry)
    assert champion_version("space_group", registry) == weak_champion.version

    result = retrain_flow(task="space_group", registry=str(registry), seed=0, **TINY)
    assert result["status"] == "promoted", result["reason"]
    assert result["n_new"] == len(LABELS) and result["n_labelled"] == len(LABELS)
    assert result["previous_champion_version"] == weak_champion.version
    held = result["metrics"]["challenger_heldout"]
    assert held["n"] == result["n_heldout"] > 0
    assert held["accuracy"] > result["metrics"]["champion_heldout"]["accuracy"]
    assert "McNemar" in result["reason"]
    # scored on every pattern neither model trained on: held-out measured, unseen films, the new scans
    gate = result["gate"]
    assert result["n_unseen"] == 276 and result["n_gate_scans"] == len(LABELS)
    assert gate["n"] == result["n_heldout"] + 276 + len(LABELS) and gate["n_new"] == len(LABELS)
    assert gate["new_challenger_only"] > gate["new_champion_only"]
    new_champion = result["champion_version"]
    assert champion_version("space_group", registry) == new_champion == result["challenger_version"]
    loaded = load_champion("space_group", registry)
    assert loaded.version == new_champion
    assert champion_cutoff(loaded) > 0  # the labels it trained on are no longer "new"

    artifacts = _artifacts(result["flow_run_id"])
    assert {"retrain-metrics", "retrain-confusion-matrix", "model-version"} <= set(artifacts)
    assert "held-out measured" in artifacts["retrain-metrics"] and "promoted" in artifacts["retrain-metrics"]
    assert "unseen materials" in artifacts["retrain-metrics"] and "new scans (held-out folds)" in artifacts["retrain-metrics"]
    assert new_champion in artifacts["model-version"]
    assert "Pm-3m" in artifacts["retrain-confusion-matrix"]
    assert "[95% interval]" in artifacts["retrain-metrics"]
    # what `xrd-agent flows run` prints: a few lines, both models with intervals, the decision
    lines = summary_lines(result)
    assert len(lines) <= 8 and lines[0].startswith("retrain PROMOTED: promoted")
    assert [line.split()[0] for line in lines if "] (n=" in line] == ["challenger", "champion"]

    # Nothing labelled since: the nightly run has nothing to do.
    skipped = retrain_flow(task="space_group", registry=str(registry), **TINY)
    assert skipped["status"] == "skipped" and champion_version("space_group", registry) == new_champion

    # A deliberately worse challenger: every training label is replaced by the class that
    # no held-out pattern has, so it learns to answer that class. It must be rejected and the
    # registry must not change by a byte.
    import dataclasses

    import training.fit

    real_fit_member = training.fit.fit_member
    wrong = CLASSES.index("P2_1/a")

    def fit_on_wrong_labels(data, member_index, *, task, config):
        corrupted = dataclasses.replace(data, labels=np.full_like(data.labels, wrong))
        return real_fit_member(corrupted, member_index, task=task, config=config)

    fits = []
    monkeypatch.setattr(training.fit, "fit_member", lambda *a, **k: fits.append(1) or fit_on_wrong_labels(*a, **k))
    before = _champion_files(registry)
    rejected = retrain_flow(task="space_group", registry=str(registry), force=True, **WORSE)
    assert rejected["status"] == "rejected", rejected["reason"]
    metrics = rejected["metrics"]
    assert metrics["challenger_heldout"]["accuracy"] < metrics["champion_heldout"]["accuracy"]
    assert "the champion is better" in rejected["reason"]
    assert rejected["gate"]["n_new"] == 0  # every labelled run is in the champion's training now
    assert champion_version("space_group", registry) == new_champion
    assert _champion_files(registry) == before
    assert load_champion("space_group", registry).version == new_champion
    artifacts = _artifacts(rejected["flow_run_id"])
    assert "rejected" in artifacts["retrain-metrics"]
    assert new_champion in artifacts["model-version"] and rejected["challenger_version"] in artifacts["model-version"]
    # What the rejected run consumed is recorded: the next night, with nothing labelled since,
    # trains nothing (no member fitted) and says why.
    assert last_consumed("space_group", registry)["status"] == "rejected"
    n_fits = len(fits)
    again = retrain_flow(task="space_group", registry=str(registry), **WORSE)
    assert again["status"] == "skipped" and len(fits) == n_fits
    assert "no training" in again["reason"] and "rejected" in again["reason"], again["reason"]
    assert "Skipped, no training" in _artifacts(again["flow_run_id"])["retrain-metrics"]


def test_fresh_install_first_retrain_is_reproducible(home, prefect_harness, labelled_uids, tmp_path,
                                                     monkeypatch) -> None:
    """No registry yet: the shipped model is the champion. Retraining on the handful of labelled runs
    gives a decision and says why; the same inputs (the same catalog and seed, an empty registry each
    time) give the same decision and the same reason, number for number. The tiny challenger is
    rejected, and the next run, with nothing labelled since, trains nothing and says so (the labels
    are still newer than the champion's cut-off: only the record of the rejected run stops it)."""
    import models
    import training.fit
    from flows.retrain import retrain_flow

    first = retrain_flow(task="space_group", registry=str(tmp_path / "first"), seed=0, **TINY)
    second = retrain_flow(task="space_group", registry=str(tmp_path / "second"), seed=0, **TINY)
    assert first["previous_champion_version"] == models.load_default("space_group").version
    assert first["champion_saw_heldout"] is False  # the shipped model never trained on the gate's patterns
    assert first["status"] in ("promoted", "rejected") and first["reason"].startswith(first["status"])
    assert "exact McNemar" in first["reason"] and f"on the {len(LABELS)} new scans" in first["reason"], first["reason"]
    assert first["gate"]["n"] == first["n_heldout"] + first["n_unseen"] + len(LABELS)
    assert (second["status"], second["reason"], second["gate"]) == (first["status"], first["reason"], first["gate"])
    assert second["metrics"] == first["metrics"]

    assert first["status"] == "rejected", first["reason"]
    fits = []
    real_fit_member = training.fit.fit_member
    monkeypatch.setattr(training.fit, "fit_member", lambda *a, **k: fits.append(1) or real_fit_member(*a, **k))
    again = retrain_flow(task="space_group", registry=str(tmp_path / "first"), seed=0, **TINY)
    assert again["status"] == "skipped" and not fits, again["reason"]
    assert "Skipped, no training" in again["reason"] and "rejected" in again["reason"]


def test_crash_mid_training_leaves_registry_untouched(home, prefect_harness, labelled_uids, weak_champion, tmp_path, monkeypatch) -> None:
    import training.fit
    from flows.retrain import retrain_flow

    registry = tmp_path / "registry"
    promote(weak_champion, root=registry)
    before = registry_snapshot(registry)
    original = training.fit.fit_member

    def crash_in_second_member(data, member_index, *, task, config):
        if member_index == 1:
            raise RuntimeError("simulated crash mid-training (member 1)")
        return original(data, member_index, task=task, config=config)

    monkeypatch.setattr(training.fit, "fit_member", crash_in_second_member)
    with pytest.raises(RuntimeError, match="simulated crash"):
        retrain_flow(task="space_group", registry=str(registry), **{**TINY, "steps": 5})
    assert registry_snapshot(registry) == before
    assert champion_version("space_group", registry) == weak_champion.version
    assert load_champion("space_group", registry).version == weak_champion.version


def test_crash_while_writing_the_model_leaves_champion_untouched(home, prefect_harness, labelled_uids, weak_champion, tmp_path, monkeypatch) -> None:
    from models.classifier import Classifier
    from flows.retrain import retrain_flow

    registry = tmp_path / "registry"
    promote(weak_champion, root=registry)
    before = registry_snapshot(registry)
    original_save = Classifier.save

    def save_then_fail(self, directory):
        original_save(self, directory)
        (Path(directory) / "weights.safetensors").write_bytes(b"half")  # a torn write
        raise OSError("simulated disk failure while writing the model")

    monkeypatch.setattr(Classifier, "save", save_then_fail)
    with pytest.raises(OSError, match="simulated disk failure"):
        # The TINY challenger passes the gate against the weak champion (the first test).
        retrain_flow(task="space_group", registry=str(registry), **TINY)
    assert registry_snapshot(registry) == before
    assert load_champion("space_group", registry).version == weak_champion.version


def test_make_task_runner_choices() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.retrain import make_task_runner

    assert isinstance(make_task_runner(None), ThreadPoolTaskRunner)
    assert isinstance(make_task_runner("local"), DaskTaskRunner)
    assert isinstance(make_task_runner("tcp://127.0.0.1:8786"), DaskTaskRunner)
    with pytest.raises(ValueError, match="scheduler address"):
        make_task_runner("http://example.org")


@pytest.mark.slow
def test_members_train_on_a_dask_local_cluster(home, prefect_harness, labelled_uids) -> None:
    """`dask="local"`: two worker processes on 127.0.0.1 each train one member. (An existing
    scheduler's address goes through the same DaskTaskRunner, built in test_make_task_runner_choices.)"""
    from flows.retrain import build_training_data, gather_labelled_runs, train_members
    from training.fit import TrainConfig

    scans = gather_labelled_runs.fn("space_group", None)
    data = build_training_data.fn(scans, "space_group", 2, 2, 0)
    config = TrainConfig(n_members=2, steps=2, width=4, batch_size=8)
    results = train_members(data, "space_group", config, "local")
    assert sorted(r.member_index for r in results) == [0, 1]
    assert all(r.state for r in results)
