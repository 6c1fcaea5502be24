"""Training the ensemble members of a challenger: one ``fit-member`` task per member.

The members train in a sub-flow whose task runner is Prefect's thread pool, a Dask
``LocalCluster`` (``dask="local"``) or an existing Dask scheduler (``dask="tcp://host:port"``).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows.run_guard import watch_flow_run


def make_task_runner(dask: str | None) -> Any:
    """The task runner of the member-training sub-flow.

    Parameters
    ----------
    dask : str or None
        None: Prefect's thread pool in this process; "local": a Dask LocalCluster of
        two single-threaded worker processes on 127.0.0.1; "tcp://host:port": an
        existing Dask scheduler.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    if dask is None or dask == "":
        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if dask == "local":
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": 2,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
            }
        )
    if dask.startswith(("tcp://", "tls://")):
        return DaskTaskRunner(address=dask)
    raise ValueError(f"dask must be None, 'local' or a scheduler address like tcp://127.0.0.1:8786, got {dask!r}")


@task(name="fit-member", cache_policy=NO_CACHE)
def fit_member_task(data: Any, member_index: int, model_task: str, config: Any, torch_threads: int | None) -> Any:
    """Train one ensemble member (``training.fit.fit_member``)."""
    import torch

    from training.fit import fit_member

    if torch_threads:
        torch.set_num_threads(torch_threads)
    return fit_member(data, member_index, task=model_task, config=config)


def train_members(data: Any, model_task: str, config: Any, dask: str | None) -> list[Any]:
    """Map ``fit-member`` over the ensemble in a sub-flow on the chosen task runner.

    The sub-flow takes no parameters (the data is closed over) so Prefect never
    tries to serialise the training arrays as flow-run parameters.
    """
    torch_threads = 1 if dask else None  # Dask workers: one thread each, no oversubscription

    @flow(name="train-members", task_runner=make_task_runner(dask), validate_parameters=False)
    def train_members_flow() -> list[Any]:
        watch_flow_run()
        futures = fit_member_task.map(
            data=unmapped(data),
            member_index=list(range(config.n_members)),
            model_task=unmapped(model_task),
            config=unmapped(config),
            torch_threads=unmapped(torch_threads),
        )
        return [future.result() for future in futures]

    return train_members_flow()


