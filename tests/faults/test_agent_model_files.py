"""Issue 11 case 11 (local side): a corrupt, truncated or mismatched model file gives one clear
error line at load, naming the file; an agent whose model source starts failing keeps its model.
(The remote agent asked to load a bad model: tests/faults/test_agent_remote.py.)"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import models
from agent.callback import ScanAgent
from models.classifier import Classifier

WEIGHTS, METADATA = "weights.safetensors", "model.json"


def _truncate(name: str, keep: float) -> Callable[[Path], None]:
    def corrupt(directory: Path) -> None:
        data = (directory / name).read_bytes()
        (directory / name).write_bytes(data[: int(len(data) * keep)])
    return corrupt


def _metadata(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def corrupt(directory: Path) -> None:
        metadata = json.loads((directory / METADATA).read_text())
        change(metadata)
        (directory / METADATA).write_text(json.dumps(metadata))
    return corrupt


def _flip_a_weight_byte(directory: Path) -> None:
    data = bytearray((directory / WEIGHTS).read_bytes())
    data[-100] ^= 0xFF  # inside the last tensor: still a readable file, another content
    (directory / WEIGHTS).write_bytes(bytes(data))


def _weights_of_the_other_task(directory: Path) -> None:
    shutil.copy(models.default_model_dir("dimensionality") / WEIGHTS, directory / WEIGHTS)


CORRUPTIONS = {
    "truncated weights": (_truncate(WEIGHTS, 0.5), WEIGHTS),
    "garbage weights": (lambda d: (d / WEIGHTS).write_bytes(b"\x00" * 1000), WEIGHTS),
    "truncated model.json": (_truncate(METADATA, 0.5), METADATA),
    "classes of another order": (_metadata(lambda m: m.update(classes=m["classes"][::-1])), METADATA),
    "model of another task": (_metadata(lambda m: m.update(task="dimensionality")), "dimensionality"),
    "temperature not a number": (_metadata(lambda m: m.update(temperature="abc")), "temperature"),
    "weights of another network": (_weights_of_the_other_task, "do not fit"),
    "one weight byte changed": (_flip_a_weight_byte, "version id"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_bad_model_file_is_refused_at_load_with_one_line(corruption: str, tmp_path: Path) -> None:
    corrupt, expected = CORRUPTIONS[corruption]
    directory = tmp_path / "model"
    shutil.copytree(models.default_model_dir("space_group"), directory)
    corrupt(directory)
    with pytest.raises(ValueError) as refused:
        Classifier.load(directory, task="space_group")
    message = str(refused.value)
    assert str(directory) in message and expected in message
    assert "\n" not in message and len(message) < 600


def test_an_agent_keeps_its_model_when_its_source_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    torch.set_num_threads(1)
    directory = tmp_path / "model"
    shutil.copytree(models.default_model_dir("space_group"), directory)
    agent = ScanAgent(Classifier.load(directory), model_source=lambda: Classifier.load(directory))
    before = agent.describe()["model_version"]
    _truncate(WEIGHTS, 0.5)(directory)  # the file behind the source is damaged between two runs
    with caplog.at_level(logging.WARNING, logger="agent.callback"):
        assert agent.describe()["model_version"] == before
    assert "keeping model" in caplog.text and WEIGHTS in caplog.text
