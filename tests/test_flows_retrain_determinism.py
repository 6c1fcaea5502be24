"""The same inputs give the same members when the retrain flow trains them in threads at once.

torch's global generator is shared by a process's threads; members initialised at the same
moment would draw from each other's seeds (``training.fit`` locks their initialisation).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


def test_members_trained_in_threads_at_once_are_the_same_every_time() -> None:
    import torch

    from training.dataset import stack_training_data
    from training.fit import TrainConfig, fit_member

    rng = np.random.default_rng(0)
    values = rng.poisson(20.0, (24, 1376)).astype(np.float32)
    measured = (values, np.ones(values.shape, bool), np.arange(24, dtype=np.int64) % 7, np.arange(24, dtype=np.int64) % 4)
    simulated = (values[:8].copy(), np.arange(8, dtype=np.int64) % 7, np.arange(8, dtype=np.int64) % 4)
    data = stack_training_data(measured, simulated)
    config = TrainConfig(n_members=4, steps=2, width=4, batch_size=8, seed=3, calibrate=False)

    def train_all() -> list[dict[str, torch.Tensor]]:
        with ThreadPoolExecutor(4) as pool:  # as Prefect's thread pool runs the fit-member tasks
            return [r.state for r in pool.map(lambda k: fit_member(data, k, task="space_group", config=config),
                                              range(4))]

    for _ in range(3):
        first, again = train_all(), train_all()
        for a, b in zip(first, again):
            assert all(torch.equal(a[name], b[name]) for name in a)
