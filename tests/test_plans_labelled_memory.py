"""A run labelled today is recognised at the next run start, before any retraining (issue 9 item 3).

A real run written by TiledWriter into the embedded tiled catalog, labelled with `storage.labels`,
then read back by the agent's model source.
"""

from __future__ import annotations

import logging

import pytest

from plans.labelled_memory import LabelledMemorySource


@pytest.fixture(scope="module")
def model():
    import models

    return models.load_default("space_group", device="cpu")


def _measure(sample: str) -> str:
    import bluesky.plans as bp
    from bluesky import RunEngine

    from sim_devices import make_beamline
    from storage.catalog import open_catalog, subscribe_writer

    RE = RunEngine({})
    subscribe_writer(RE, open_catalog())
    bl = make_beamline(sample=sample, seed=3)
    (uid,) = RE(bp.scan([bl.detector], bl.motor, 5.0, 60.0, 345), sample=sample)
    return uid


def test_a_labelled_run_is_recognised_at_the_next_run_start(model, caplog) -> None:
    from storage.catalog import open_catalog
    from storage.labels import label_runs
    from storage.scans import scan_arrays

    uid = _measure("Cs3Bi2I9")
    two_theta, intensity = scan_arrays(open_catalog()[uid])
    source = LabelledMemorySource(lambda: model, "space_group", open_catalog)
    assert source() is model and source.remembered_ == {}  # nothing labelled yet
    before = model.predict(two_theta, intensity)
    assert before.label != "P6_3/mmc"  # the network alone gets this film wrong (the check can fail)

    label_runs([uid], space_group="P6_3/mmc", catalog=open_catalog())
    remembering = source()
    assert source.remembered_ == {uid: "P6_3/mmc"}
    assert remembering.memory.embeddings_.shape[0] == model.memory.embeddings_.shape[0] + 1
    after = remembering.predict(two_theta, intensity)
    assert after.label == "P6_3/mmc" and after.probabilities.max() > before.probabilities.max() - 1e-9
    assert source() is remembering  # nothing new: the same model, no re-embedding

    label_runs([uid], space_group="Pm-3m", catalog=open_catalog())  # a corrected label replaces the first
    corrected = source()
    assert source.remembered_ == {uid: "Pm-3m"}
    assert corrected.memory.embeddings_.shape[0] == model.memory.embeddings_.shape[0] + 1
    assert corrected.predict(two_theta, intensity).label == "Pm-3m"

    def unreachable():
        raise ConnectionError("tiled at 127.0.0.1:9 refused the connection")

    other = LabelledMemorySource(lambda: model, "space_group", unreachable)
    with caplog.at_level(logging.WARNING, logger="plans.labelled_memory"):
        assert other() is model and other() is model
    assert sum("not read from the catalog" in r.getMessage() for r in caplog.records) == 1


def test_the_agents_model_source_remembers_labels_and_offers_the_second_cam(model) -> None:
    # one source for the local agent and `xrd-agent serve-agent`: the served agent had no second-class CAM
    import numpy as np

    from agent.top_two import TopTwoCams
    from plans.beamline import BeamlineConfig, agent_model_source

    source = agent_model_source(BeamlineConfig(task="space_group"))
    wrapped = source()
    assert isinstance(wrapped, TopTwoCams) and source() is wrapped  # the same wrapper while the model is the same
    two_theta = np.arange(5.0, 60.0, 0.04)
    prediction = wrapped.predict(two_theta, 100.0 + 50.0 * np.exp(-((two_theta - 30.0) / 0.1) ** 2))
    assert prediction.second_cam.shape == prediction.cam.shape
    # the second class's map comes from the prediction's own forward pass; it is the map a second
    # pass (`Classifier.explain` for that class) gives
    import torch

    from models.grid import to_grid
    from models.preprocess import preprocess_torch

    values, mask = to_grid(two_theta, 100.0 + 50.0 * np.exp(-((two_theta - 30.0) / 0.1) ** 2))
    features = preprocess_torch(torch.from_numpy(values[None]), torch.from_numpy(mask[None]))
    second = int(np.argsort(prediction.probabilities)[-2])
    np.testing.assert_allclose(prediction.second_cam, wrapped.classifier.explain(features, second)[0], atol=1e-5)
    assert prediction.second_label == prediction.classes[second] != prediction.label
