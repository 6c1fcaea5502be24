"""What the gate scores: the shipped unseen-materials films, the new scans, the held-out-fold answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.gate_evaluation import (
    _read_films,
    gate_scan_rows,
    held_out_fold_predictions,
    load_unseen_films,
    unseen_films_path,
)
from storage.scans import LabelledScan

#: Structures re-rendered by the drift check (cheap ones of three classes).
CHECKED = ("KMgF3", "CdI2", "Cs2NaBiCl6")


@pytest.mark.parametrize("task", ["space_group", "dimensionality"])
def test_shipped_films_are_what_the_evaluation_renders(task: str) -> None:
    """The files under data/ are the evaluation's unseen films, pattern for pattern (some re-rendered),
    from the current structure table: a change of the renderer or the table fails here."""
    from bench.gate_films import FILMS_SEED, table_sha256
    from evaluation.unseen_materials import task_entries, unseen_films

    with np.load(unseen_films_path(task), allow_pickle=False) as stored:
        assert str(stored["table_sha256"]) == table_sha256(), "structures.json changed: run python -m bench.gate_films"
        assert int(stored["seed"]) == FILMS_SEED
        names, counts, labels = list(stored["names"]), stored["counts"], stored["labels"]
    structures = [n.split("|")[0] for n in names]
    assert sorted(set(structures)) == sorted(e.name for e in task_entries(task))
    fresh = unseen_films(task, seed=FILMS_SEED, names=tuple(n for n in CHECKED if n in structures))
    rows = [names.index(n) for n in fresh.names]
    np.testing.assert_array_equal(counts[rows], fresh.values)
    np.testing.assert_array_equal(labels[rows], fresh.labels)
    films = load_unseen_films(task)
    assert films.features.shape == (len(names), 2, 1376) and films.features.dtype == np.float32
    films.features[:] = 0  # a copy: the cached films are untouched
    assert load_unseen_films(task).features.any()


def test_unseen_films_leave_out_a_structure_a_labelled_run_names() -> None:
    everything = load_unseen_films("space_group")
    fewer = load_unseen_films("space_group", ["KMgF3"])
    assert len(everything) - len(fewer) == 6  # 3 textures x 2 count levels
    assert not any(n.startswith("KMgF3|") for n in fewer.names)


def test_a_bad_films_file_is_refused_without_unpickling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.gate_evaluation as gate_evaluation

    target = tmp_path / "films-space_group.npz"
    monkeypatch.setattr(gate_evaluation, "unseen_films_path", lambda task: target)
    _read_films.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="bench.gate_films"):
            load_unseen_films("space_group")
        np.savez(target, counts=np.zeros((2, 1376), np.uint32), labels=np.zeros(2, np.int64))
        with pytest.raises(ValueError, match="lacks arrays"):
            load_unseen_films("space_group")
        _read_films.cache_clear()
        np.savez(target, counts=np.zeros((2, 1376), np.uint32), labels=np.zeros(2, np.int64), names=np.array(["a", "b"]),
                 structures=np.array(["a", "b"]), classes=np.array(["2D", "3D"]), task=np.array("dimensionality"))
        with pytest.raises(ValueError, match="not 'space_group'"):
            load_unseen_films("space_group")
        _read_films.cache_clear()
        np.savez(target, counts=np.array([None, 1], dtype=object), labels=np.zeros(2, np.int64), names=np.array(["a", "b"]),
                 structures=np.array(["a", "b"]), classes=np.array(["x"]), task=np.array("space_group"))
        with pytest.raises(ValueError, match="allow_pickle=False"):  # numpy refuses the object array: nothing is unpickled
            load_unseen_films("space_group")
        target.write_bytes(b"\x80\x04garbage")  # a pickle's first bytes
        with pytest.raises(ValueError, match="films-space_group.npz: not a films file"):
            load_unseen_films("space_group")
    finally:
        _read_films.cache_clear()


def _scan(uid: str, label_time: float, sample: str) -> LabelledScan:
    return LabelledScan(uid, np.linspace(5, 60, 10), np.ones(10), "Pm-3m", label_time, sample)


def test_gate_scans_are_those_the_champion_never_trained_on() -> None:
    from flows.dataset import heldout_dataset
    from training.measured_set import load_measured_set

    held = set(heldout_dataset("space_group")[0].names)
    trained = next(n for n in load_measured_set("space_group").names if n not in held)
    heldout_name = sorted(held)[0]
    scans = [
        _scan("old", 10.0, "CsPbBr3"),                           # the champion trained on it
        _scan("new", 20.0, "CsPbBr3"),                           # new to the champion
        _scan("replay-trained", 30.0, f"auto-xrd/{trained}"),    # a replay of a pattern both trained on
        _scan("replay-heldout", 40.0, f"auto-xrd/{heldout_name}"),  # a replay of a held-out pattern: new
        _scan("no-sample", 50.0, ""),
    ]
    rows, n_replays = gate_scan_rows(scans, 10.0, "space_group")
    assert [scans[i].uid for i in rows] == ["new", "replay-heldout", "no-sample"] and n_replays == 1
    rows, _ = gate_scan_rows(scans, 0.0, "space_group")
    assert [scans[i].uid for i in rows] == ["old", "new", "replay-heldout", "no-sample"]


def test_each_row_is_answered_by_the_member_that_held_it_out() -> None:
    from training.fit import MemberResult

    def member(k: int, rows: list[int], answers: list[int]) -> MemberResult:
        logits = np.full((len(rows), 3), -5.0, np.float32)
        logits[np.arange(len(rows)), answers] = 5.0
        return MemberResult(k, {}, np.asarray(rows, np.int64), logits)

    results = [member(0, [0, 3, 7], [2, 0, 1]), member(1, [1, 2, 9], [1, 1, 0])]
    predicted = held_out_fold_predictions(results, np.array([3, 1, 7, 5, 0], np.int64))
    np.testing.assert_array_equal(predicted, [0, 1, 1, -1, 2])  # row 5: no member held it out
