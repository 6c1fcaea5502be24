"""Grouped fold classifiers for the loop benchmark: unseen files really are unseen; cache works."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.compared_models import quick_config
from evaluation.fold_classifiers import FOLD_CONFIG, grouped_fold_classifiers, unseen_xy_names
from training.measured_set import load_measured_set
from tests.test_evaluate_protocols import synthetic_source


@pytest.mark.parametrize("task", ["space_group", "dimensionality"])
def test_unseen_names_partition_the_xy_files_and_share_no_group_with_training(task: str) -> None:
    from evaluation.folds import stratified_folds

    lists = unseen_xy_names(task, seed=1)
    flat = [n for names in lists for n in names]
    xy = load_measured_set("space_group")
    assert sorted(flat) == sorted(xy.names)  # every .xy file exactly once
    measured = load_measured_set(task)
    folds = stratified_folds(measured.labels, 5, 1, 1, groups=measured.groups)
    group_of = dict(zip(xy.names, xy.groups))
    for names, fold in zip(lists, folds):
        trained_groups = set(measured.groups[fold.train])
        assert not {group_of[n] for n in names} & trained_groups
        # and no training pattern is a copy of an unseen file
        trained_xy = {measured.xy_names[i] for i in fold.train}
        assert not trained_xy & set(names)


def test_grouped_fold_classifiers_train_save_and_reload(tmp_path) -> None:
    config = quick_config(FOLD_CONFIG)
    first = grouped_fold_classifiers("dimensionality", 0, tmp_path, n_splits=2, config=config,
                                     source=synthetic_source)
    assert len(first) == 2
    assert sorted(n for _, names in first for n in names) == sorted(load_measured_set("space_group").names)
    again = grouped_fold_classifiers("dimensionality", 0, tmp_path, n_splits=2, config=config,
                                     source=synthetic_source)
    features = load_measured_set("dimensionality").features[:4]
    for (a, names_a), (b, names_b) in zip(first, again):
        assert names_a == names_b and a.version == b.version  # loaded from the cache
        np.testing.assert_allclose(a.predict_proba(features), b.predict_proba(features), rtol=1e-5)
