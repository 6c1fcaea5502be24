"""The coarse-step and background-dwell tuning: its rule, its set kept apart from the reported sets, and a run end to end."""

from __future__ import annotations

import json

import pytest

from bench.loop_tuning import choose_setting, choose_settling, promise_broken, run, tuning_jobs, tuning_structures


def test_the_coarsest_step_within_the_margin_of_the_fine_scan_is_chosen() -> None:
    full_path = {0.16: 0.72, 0.24: 0.70, 0.32: 0.69, 0.48: 0.58}
    assert choose_setting(full_path, fine_accuracy=0.70) == 0.32
    assert choose_setting(full_path, fine_accuracy=0.71) == 0.24  # 0.32 now gives up more than 0.01
    assert choose_setting({0.16: 0.5, 0.32: 0.4}, fine_accuracy=0.9) == 0.16  # none qualifies: the finest


def test_the_shortest_background_dwell_within_the_margin_is_chosen() -> None:
    full_path = {1.0: 0.70, 0.5: 0.71, 0.25: 0.695, 0.125: 0.66}
    assert choose_setting(full_path, fine_accuracy=0.70, cheapest=min) == 0.25
    assert choose_setting(full_path, fine_accuracy=0.72, cheapest=min) == 0.5
    assert choose_setting({1.0: 0.5, 0.25: 0.4}, fine_accuracy=0.9, cheapest=min) == 1.0  # none qualifies: the full dwell


def _row(fraction, span, reach, kept=True):
    return {"min_fraction": fraction, "stable_span": span, "time_fraction_to_reach": reach, "promise_kept": kept}


def test_the_settling_that_reaches_the_fine_accuracy_soonest_with_its_promise_kept_is_chosen() -> None:
    rows = [_row(0.35, 4.0, 0.13), _row(0.2, 2.0, 0.09), _row(0.1, 1.0, 0.05, kept=False), _row(0.3, 3.0, None)]
    assert choose_settling(rows) == (0.2, 2.0)  # 0.1/1 is sooner but breaks a promise; 0.3/3 never reaches it
    assert choose_settling([_row(0.2, 2.0, 0.09), _row(0.25, 1.0, 0.09), _row(0.25, 3.0, 0.09)]) == (0.25, 3.0)  # ties: more evidence
    assert choose_settling([_row(0.1, 1.0, 0.05, kept=False), _row(0.35, 4.0, None)]) == (0.35, 4.0)  # none qualifies: most cautious


def test_a_risk_promise_is_broken_only_when_its_wrong_stops_are_significantly_above_it() -> None:
    assert not promise_broken(0, 0, 0.02)  # no early stop promises nothing
    assert not promise_broken(1, 10, 0.1)  # one in ten at risk 0.1: as promised
    assert not promise_broken(2, 10, 0.1)  # above, but well within chance
    assert promise_broken(6, 10, 0.1)
    assert promise_broken(3, 10, 0.02)


def test_the_tuning_films_are_no_structure_the_loop_benchmark_reports() -> None:
    from evaluation.unseen_materials import task_entries

    names = set(tuning_structures())
    assert len(names) >= 40
    assert not names & {entry.name for entry in task_entries("space_group")}
    # every film is one of those structures, built from it (the measured set is replayed from
    # files, "auto-xrd/...", never from a prototype)
    jobs = tuning_jobs(None, 0, max_samples=1)
    assert [job.name for job in jobs] == [f"prototype:{name}{suffix}" for name in tuning_structures()[:1]
                                          for suffix in ("", " weak")]


@pytest.mark.slow
def test_a_small_tuning_run_writes_the_curves_and_its_choice(tmp_path) -> None:
    out = tmp_path / "loop_tuning.json"
    result = run(out=out, max_samples=1, steps=(0.16, 0.32), log=None)  # one structure: its default and weak film
    written = json.loads(out.read_text())
    assert written["chosen_coarse_step"] == result["chosen_coarse_step"] in (0.16, 0.32)
    assert set(written["full_path"]) == {"0.16", "0.32"}
    assert set(written["by_film"]) == {"default", "weak"} and set(written["by_film"]["weak"]["full_path_accuracy"]) == {"0.16", "0.32"}
    for step in ("0.16", "0.32"):  # the full path scans the whole range: never cheaper than the coarse grid alone
        assert written["full_path"][step]["points"] >= 55.0 / float(step)
    assert written["full_path"]["0.32"]["acq_time_s"] < written["full_path"]["0.16"]["acq_time_s"]
    assert out.with_suffix(".png").stat().st_size > 0
    chosen = f"{written['chosen_coarse_step']:g}"
    assert written["chosen_background_dwell"] in (1.0, 0.5, 0.25, 0.125)
    assert set(written["full_path_background_dwell"]) == {"1", "0.5", "0.25", "0.125"}
    shorter = written["curves"][f"agent coarse {chosen}, background dwell 0.25"]
    full = {p["knob"]: p for p in written["curves"][f"agent coarse {chosen}"]}
    for point in shorter:  # the same positions counted shorter over background: less time, the same points
        assert point["acq_time_s"] < full[point["knob"]]["acq_time_s"] or point["points"] != full[point["knob"]]["points"]
    assert set(written["accuracy_within_15pct_of_uniform_0_04_time"]) == set(written["curves"])
    settling = {(r["min_fraction"], r["stable_span"]): r for r in written["settling"]}
    assert len(settling) == 25 and (written["chosen_settling"]["min_fraction"], written["chosen_settling"]["stable_span"]) in settling
    for (fraction, span), row in settling.items():  # a looser rule never stops later than a stricter one
        if (fraction, span) != (0.35, 4.0):
            strict = {p["knob"]: p["acq_time_s"] for p in settling[(0.35, 4.0)]["curve"]}
            assert all(p["acq_time_s"] <= strict[p["knob"]] + 1e-9 for p in row["curve"] if fraction <= 0.35 and span <= 4.0)
