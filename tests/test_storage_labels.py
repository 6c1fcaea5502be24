"""Labelling at beamline speed: runs named by scan ID or uid prefix, symbols normalised, `runs` columns.

Real runs written by TiledWriter into the embedded catalog; the CLI is called through its
entry point against that catalog.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from patterns import SPACE_GROUPS
from storage.label_symbols import normalise_dimensionality, normalise_space_group
from storage.labels import LABEL_KEY, label_runs


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labels-home")


@pytest.fixture
def home(module_home: Path, xrd_agent_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XRD_AGENT_HOME", str(module_home))
    return module_home


@pytest.fixture(scope="module")
def runs(module_home: Path) -> dict[str, str]:
    """Four runs: scan IDs 1, 2, 3 (one RunEngine) and 1 again (a fresh RunEngine).

    ``plain``: a bp.scan (no class); ``twin``: the other scan 1; ``outcome``: its class in the stop
    document's reason, as adaptive scans close; ``decided``: a class only in its decisions stream.
    """
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XRD_AGENT_HOME", str(module_home))
        catalog = open_catalog()
        first, second = RunEngine({}), RunEngine({})
        for RE in (first, second):
            subscribe_writer(RE, catalog)
        bl = make_beamline(sample="CsPbBr3", seed=1)
        (plain,) = first(bp.scan([bl.detector], bl.motor, 20.0, 25.0, 6), sample="CsPbBr3")
        (outcome,) = first(closes_with("class Pm-3m (0.973); top3 Pm-3m 0.973; stop: settled; fallback points: 0"))
        (twin,) = second(bp.scan([bl.detector], bl.motor, 20.0, 25.0, 4), sample="Cs3Bi2Br9")
        (decided,) = first(closes_with("", label="Pc"))
    return {"plain": plain, "outcome": outcome, "twin": twin, "decided": decided}


def closes_with(reason: str, label: str | None = None):
    """A run with no primary stream that closes with ``reason``; with ``label``, one decisions row of that class."""
    import bluesky.plan_stubs as bps
    from ophyd import Signal

    yield from bps.open_run(md={"sample": "MAPbI3"})
    if label is not None:
        record = [Signal(name="decision_label", value=label), Signal(name="decision_confidence", value=0.61)]
        yield from bps.trigger_and_read(record, name="decisions")
    yield from bps.close_run(reason=reason)


def _cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from cli.main import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("P63/mmc", "P6_3/mmc"), ("p6_3/mmc", "P6_3/mmc"), ("pm-3m", "Pm-3m"), ("P m -3 m", "Pm-3m"),
     ("221", "Pm-3m"), ("194", "P6_3/mmc"), ("P21/a", "P2_1/a"), ("P2_1/c", "P2_1/a"), ("14", "P2_1/a"),
     ("7", "Pc"), ("i4/MCM", "I4/mcm")],
)
def test_space_group_symbols_are_normalised(typed: str, expected: str) -> None:
    assert normalise_space_group(typed, SPACE_GROUPS) == expected


@pytest.mark.parametrize(("typed", "message"), [("0", "outside 1-230"), ("231", "outside 1-230"),
                                                ("Pnma", r"No\. 62"), ("62", r"No\. 62"), ("P7", "unknown space group")])
def test_bad_space_groups_are_refused(typed: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_space_group(typed, SPACE_GROUPS)
    assert normalise_dimensionality("2d", ("0D", "2D", "3D")) == "2D"


def test_label_by_scan_id_and_prefix_and_several_at_once(home, runs, capsys) -> None:
    from storage.catalog import get_run, open_catalog

    # scan ID 1 belongs to two runs: refused, both listed, nothing written
    code, _, err = _cli("label", "1", "--space-group", "pm-3m", capsys=capsys)
    assert code == 2 and runs["plain"] in err and runs["twin"] in err and "nothing was written" in err
    catalog = open_catalog()  # (an in-process catalog opened before the CLI's own would have a stale key)
    assert all(LABEL_KEY not in get_run(catalog, u).metadata["start"] for u in runs.values())
    # scan ID 2 is unique; an 8-character prefix names the other run; one label for both
    code, out, err = _cli("label", "2", runs["twin"][:8], "--space-group", "P63/mmc", "--by", "me", capsys=capsys)
    assert code == 0, err
    catalog = open_catalog()
    for uid in (runs["outcome"], runs["twin"]):
        stored = get_run(catalog, uid).metadata["start"][LABEL_KEY]
        assert stored["space_group"] == "P6_3/mmc" and stored["dimensionality"] == "0D" and stored["by"] == "me"
        assert f"labelled {uid}" in out
    # an unknown key among good ones writes nothing at all
    with pytest.raises(KeyError, match="no run with uid prefix 'fffffff'"):
        label_runs([runs["plain"], "fffffff"], space_group="Pc", catalog=catalog)
    assert LABEL_KEY not in get_run(catalog, runs["plain"]).metadata["start"]
    with pytest.raises(ValueError, match="neither a uid"):
        label_runs(["not-a-uid%"], space_group="Pc", catalog=catalog)


def test_report_accepts_a_unique_prefix(home, runs) -> None:
    from storage.catalog import open_catalog
    from storage.run_lookup import resolve_run, run_uid

    catalog = open_catalog()
    assert run_uid(resolve_run(catalog, runs["decided"][:8])) == runs["decided"]
    assert run_uid(resolve_run(catalog, runs["decided"].upper())) == runs["decided"]
    with pytest.raises(KeyError):
        resolve_run(catalog, 99)


def test_the_runs_table_tells_file_samples_apart() -> None:
    # the column once showed a path's first 20 characters: every file sample looked the same
    from cli.storage import SAMPLE_WIDTH, short_sample

    assert short_sample("/data/beamtime/2026/field-cases/08-two-scans.xrdml") == "08-two-scans.xrdml"
    assert short_sample("auto-xrd/MASnI3_2-Theta_Omega") == "MASnI3_2-Theta_Omega"
    assert short_sample("CsPbBr3") == "CsPbBr3" and short_sample(None) == "-" and short_sample("") == "-"
    long = short_sample("/scans/FAPbI3_annealed_150C_30min_gixrd_run7.xy")
    assert len(long) == SAMPLE_WIDTH and long.startswith("...") and long.endswith("_gixrd_run7.xy")
    assert short_sample("C:\\scans\\film.xy") == "film.xy"


def test_runs_shows_class_confidence_points_status_and_filters(home, runs, capsys) -> None:
    code, out, _ = _cli("runs", capsys=capsys)
    header, *rows = out.splitlines()
    assert code == 0 and header.split() == ["uid", "scan", "start", "(UTC)", "sample", "predicted", "conf", "points",
                                            "exit", "label"]
    by_uid = {row.split()[0]: row.split() for row in rows}
    assert by_uid[runs["plain"][:8]][1:2] == ["1"] and by_uid[runs["plain"][:8]][5:9] == ["-", "-", "6", "success"]
    assert by_uid[runs["outcome"][:8]][5:9] == ["Pm-3m", "0.973", "0", "success"]
    assert by_uid[runs["decided"][:8]][5:9] == ["Pc", "0.610", "0", "success"]

    code, out, _ = _cli("runs", "--json", "--predicted", "pm-3m", capsys=capsys)
    (only,) = [json.loads(line) for line in out.splitlines()]
    assert only["uid"] == runs["outcome"] and only["confidence"] == 0.973 and only["points"] == 0
    for argv, expected in [
        (("--scan-id", "1"), {"plain", "twin"}),
        (("--sample", "bi2"), {"twin"}),
        (("--min-confidence", "0.9"), {"outcome"}),
        (("--max-confidence", "0.7"), {"decided"}),
        (("--min-points", "5"), {"plain"}),
        (("--exit-status", "none"), set()),
        (("--since", "2000-01-01", "--until", "2000-01-02"), set()),
    ]:
        code, out, _ = _cli("runs", "--json", *argv, capsys=capsys)
        got = {json.loads(line)["uid"] for line in out.splitlines()}
        assert code == 0 and got == {runs[k] for k in expected}, argv
    code, _, err = _cli("runs", "--since", "yesterday", capsys=capsys)
    assert code == 2 and "not an ISO date" in err
    assert not math.isnan(0.0)
