"""The champion seen by the agent: registry first, shipped default otherwise, reloaded at run start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.champion import ChampionCache, champion_version, load_champion, promote


def _constant_model(class_index: int):
    """An untrained one-member network biased to answer one class (distinct content per class)."""
    from models.architectures import build_network, split_members
    from models.classifier import Classifier
    from training.fit import TrainConfig
    from patterns import SPACE_GROUPS

    config = TrainConfig(n_members=1, width=4, calibrate=False)
    torch.manual_seed(0)
    state = split_members(config.architecture, build_network(config.architecture, 7, 1, 4).state_dict(), 1)[0]
    (bias,) = [k for k, v in state.items() if "bias" in k and v.shape[-1:] == (len(SPACE_GROUPS),)]
    state[bias] = torch.zeros_like(state[bias])
    state[bias][..., class_index] = 50.0
    return Classifier.from_members([state], task="space_group", config=config)


def test_cache_reloads_only_when_the_pointer_moves(tmp_path: Path) -> None:
    registry = tmp_path / "models"
    first, second = _constant_model(0), _constant_model(3)
    promote(first, root=registry)
    cache = ChampionCache("space_group", registry)
    model = cache.get()
    assert model.version == first.version and cache.get() is model  # no reload without a promotion
    promote(second, root=registry, record={"heldout_accuracy": 0.5})
    assert cache.get().version == second.version == champion_version("space_group", registry)
    log = [json.loads(line) for line in (registry / "space_group" / "promotions.jsonl").read_text().splitlines()]
    assert [e["version"] for e in log] == [first.version, second.version]
    assert log[1]["previous"] == first.version and log[1]["heldout_accuracy"] == 0.5


def test_empty_registry_falls_back_to_the_shipped_default(tmp_path: Path) -> None:
    import models

    if not (models.default_model_dir("space_group") / "model.json").is_file():
        pytest.skip("no shipped default model in this checkout")
    assert champion_version("space_group", tmp_path) is None
    assert load_champion("space_group", tmp_path).version == models.load_default("space_group").version


def test_malformed_pointer_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "space_group").mkdir()
    (tmp_path / "space_group" / "champion.json").write_text("{not json")
    with pytest.raises(ValueError, match="malformed champion pointer"):
        champion_version("space_group", tmp_path)
    with pytest.raises(ValueError, match="unknown task"):
        champion_version("phase", tmp_path)
