"""The agent as a bluesky callback: documents in, decisions out.

`ScanAgent` holds one classifier and answers ``decision_for(run_uid, n_points)`` for the runs it has
seen. It watches runs through `ScanAgent.factory`, a RunRouter factory: for every adaptive run
(a start document with ``"adaptive"`` metadata) it makes one `AgentRunCallback`, a
`bluesky.callbacks.core.CallbackBase` that rebuilds the partial scan from the primary stream's
events. On a decision the run callback classifies the partial scan (the classifier's own
preprocessing, on the best device: CUDA when present, CPU otherwise), applies the pure policy with
the thresholds the plan wrote into the start document, and times the whole thing.

`LocalAgent` is the in-process channel the plan talks to (``ask`` / ``describe`` /
``document_callback``); `agent.remote` provides the same channel across processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from bluesky.callbacks.core import CallbackBase
from event_model import RunRouter

from agent.decision import Decision
from agent.partial_scan import PartialScanBuilder, points_in_model_range
from agent.policy import PolicyConfig, PredictionSummary, next_action

logger = logging.getLogger(__name__)

MIN_POINTS_FOR_PREDICTION = 4
"""Below this many points on the model's range the model is not run (a handful carries no class evidence)."""

KEEP_FINISHED_RUNS = 4
"""How many finished runs the agent remembers (late questions about a just-closed run)."""


class ClassifierLike(Protocol):
    """What the agent needs from `models.classifier.Classifier`."""

    version: str
    classes: tuple[str, ...]
    task: str

    def predict(self, two_theta: np.ndarray, intensity: np.ndarray) -> Any: ...


class AgentNotReady(RuntimeError):
    """The agent has not (yet) seen the documents a decision was asked about."""


def place_on_best_device(classifier: ClassifierLike) -> str:
    """The device the classifier runs on, moving it to the best one when it can be moved.

    `models.classifier.Classifier` already picks CUDA when present, else CPU (its ``device``);
    a classifier with a ``to(device)`` method is moved.
    """
    device = getattr(classifier, "device", None)
    if device is not None:
        return str(device)
    mover = getattr(classifier, "to", None)
    if callable(mover):
        from models.classifier import select_device  # the one device rule

        device = str(select_device())
        mover(device)
        return device
    return "cpu"


class AgentRunCallback(CallbackBase):
    """Rebuild one adaptive run's partial scan from its documents and decide on request.

    Parameters
    ----------
    start_doc : dict
        The run's start document (with ``"adaptive"`` metadata, see `PartialScanBuilder`).
    classifier : ClassifierLike
        The model.
    grid : np.ndarray
        Angles of the classifier's CAM, degrees.
    """

    def __init__(self, start_doc: dict[str, Any], classifier: ClassifierLike, grid: np.ndarray) -> None:
        super().__init__()
        self.builder = PartialScanBuilder(start_doc)
        self.config = PolicyConfig.from_dict(start_doc["adaptive"].get("policy", {}))
        self.classifier = classifier
        self.grid = grid
        self.history: list[PredictionSummary] = []
        self.latencies_ms: list[float] = []
        self.stopped = False
        self._new_points = threading.Condition()

    # -- documents -------------------------------------------------------------------------------
    def descriptor(self, doc: dict[str, Any]) -> dict[str, Any]:
        self.builder.descriptor(doc)
        return doc

    # Documents may arrive on a dispatcher thread while a decision is computed on another (remote
    # agent): the condition's lock serialises adding points and reading them.
    def event(self, doc: dict[str, Any]) -> dict[str, Any]:
        with self._new_points:
            if self.builder.event(doc):
                self._new_points.notify_all()
        return doc

    def event_page(self, doc: dict[str, Any]) -> dict[str, Any]:
        with self._new_points:
            if self.builder.event_page(doc):
                self._new_points.notify_all()
        return doc

    def stop(self, doc: dict[str, Any]) -> dict[str, Any]:
        self.stopped = True
        with self._new_points:
            self._new_points.notify_all()
        return doc

    # -- decisions -------------------------------------------------------------------------------
    def wait_for_points(self, n_points: int, timeout: float) -> bool:
        """Block (at most `timeout` s) until `n_points` primary events were seen; returns success."""
        deadline = time.monotonic() + timeout
        with self._new_points:
            while self.builder.n_seen < n_points and not self.stopped:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._new_points.wait(remaining)
        return self.builder.n_seen >= n_points

    def classify_and_choose(self, n_points: int) -> Decision:
        """Classify the partial scan and apply the policy.

        Parameters
        ----------
        n_points : int
            How many points the plan has measured; the decision is refused when the callback has
            seen fewer (the documents are late), so plan and agent never talk past each other.

        Raises
        ------
        AgentNotReady
            If fewer than `n_points` points have arrived.
        """
        with self._new_points:
            return self._classify_and_choose(n_points)

    def _classify_and_choose(self, n_points: int) -> Decision:
        started = time.perf_counter()
        scan = self.builder.scan
        if self.builder.n_seen < n_points:
            raise AgentNotReady(f"run {self.builder.run_uid}: {self.builder.n_seen} of {n_points} points seen")
        prediction = None
        two_theta, counts = scan.sorted()
        # Only points on the model's range are evidence: a scan starting at 0 deg has no class
        # until it reaches the model's range; until then the policy's model-free rules step it.
        if points_in_model_range(two_theta, self.grid) >= MIN_POINTS_FOR_PREDICTION:
            prediction = self.classifier.predict(two_theta, counts)
        decision = next_action(scan, prediction, self.history, self.config, self.grid)
        if prediction is not None:
            self.history.append(PredictionSummary(str(prediction.label), float(prediction.confidence), scan.frontier))
        elif scan.n_points >= MIN_POINTS_FOR_PREDICTION:
            decision = _with(decision, reason=f"{decision.reason} (outside the model's range "
                                              f"{self.grid[0]:.2f}-{self.grid[-1]:.2f} deg: no class)")
        latency_ms = 1e3 * (time.perf_counter() - started)
        self.latencies_ms.append(latency_ms)
        return _with(decision, model_version=str(self.classifier.version), latency_ms=latency_ms)


def _with(decision: Decision, **changes: Any) -> Decision:
    """A copy of a frozen decision with some fields replaced."""
    from dataclasses import replace

    return replace(decision, **changes)


class ScanAgent:
    """One classifier serving decisions for the adaptive runs it watches.

    Parameters
    ----------
    classifier : ClassifierLike
        The model (e.g. ``models.load_default("space_group")``); moved to the best device.
    grid : np.ndarray, optional
        Angles of the classifier's CAM, degrees; default `models.grid.GRID`.
    inference_threads : int or None
        Torch intra-op threads for inference (process-wide ``torch.set_num_threads``); None leaves
        torch's setting alone. One thread is the fastest for a single small pattern: on a busy
        machine torch's default pool of spinning threads made a 1 ms prediction take 50-400 ms.
    model_source : callable, optional
        Called at every run start (and by `describe`, just before a plan opens its run) to get the
        model for that run, e.g. ``models.champion.ChampionCache(task).get``: a model promoted
        during a scan is used from the next run on, never mid-scan. None keeps `classifier`.
    """

    def __init__(
        self,
        classifier: ClassifierLike,
        grid: np.ndarray | None = None,
        inference_threads: int | None = 1,
        model_source: Callable[[], ClassifierLike] | None = None,
    ) -> None:
        if inference_threads is not None:
            import torch

            if inference_threads < 1:
                raise ValueError(f"inference_threads must be >= 1, got {inference_threads}")
            torch.set_num_threads(inference_threads)
        if grid is None:
            from models.grid import GRID

            grid = GRID
        self.classifier = classifier
        self.model_source = model_source
        self.grid = np.asarray(grid, dtype=np.float64)
        self.device = place_on_best_device(classifier)
        self._runs: OrderedDict[str, AgentRunCallback] = OrderedDict()
        self._lock = threading.Lock()
        self._run_added = threading.Condition(self._lock)
        self.router = RunRouter([self.factory])

    def factory(self, name: str, start_doc: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """RunRouter factory: a callback for each adaptive run, nothing for other runs."""
        if "adaptive" not in start_doc:
            return [], []
        self._refresh_model()
        callback = AgentRunCallback(start_doc, self.classifier, self.grid)
        with self._run_added:
            self._runs[start_doc["uid"]] = callback
            while len(self._runs) > KEEP_FINISHED_RUNS and next(iter(self._runs.values())).stopped:
                self._runs.popitem(last=False)
            self._run_added.notify_all()
        return [callback], []

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Feed one document (subscribe the agent itself to a RunEngine or a RemoteDispatcher)."""
        self.router(name, doc)

    def run(self, run_uid: str, timeout: float = 0.0) -> AgentRunCallback:
        """The callback of a run, waiting at most `timeout` s for its start document."""
        deadline = time.monotonic() + timeout
        with self._run_added:
            while run_uid not in self._runs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AgentNotReady(f"no start document seen for run {run_uid}")
                self._run_added.wait(remaining)
            return self._runs[run_uid]

    def _refresh_model(self) -> None:
        """Take the model source's current model (between runs only: each run keeps its own).

        A source that fails (a corrupt or mismatched model file behind the champion pointer) is
        logged and the current model kept: a bad file never leaves the agent without a model.
        """
        if self.model_source is None:
            return
        try:
            classifier = self.model_source()
        except Exception as exc:  # noqa: BLE001 - any load failure: keep serving with the model we have
            logger.warning("model source failed (%s: %s); keeping model %s", type(exc).__name__, exc,
                           self.classifier.version)
            return
        self.use_model(classifier)

    def use_model(self, classifier: ClassifierLike) -> None:
        """Serve `classifier` from the next run on (runs already started keep theirs)."""
        if classifier is not self.classifier:
            self.classifier = classifier
            self.device = place_on_best_device(classifier)

    def describe(self) -> dict[str, Any]:
        """Model identity for the run's start document (the model the next run will use)."""
        self._refresh_model()
        return {
            "model_version": str(self.classifier.version),
            "model_task": str(getattr(self.classifier, "task", "")),
            "classes": [str(c) for c in self.classifier.classes],
            "device": self.device,
        }

    def decision_for(self, run_uid: str, n_points: int, timeout: float = 0.0) -> Decision:
        """The decision after `n_points` points of run `run_uid`, waiting up to `timeout` s for documents."""
        run = self.run(run_uid, timeout)
        if not run.wait_for_points(n_points, timeout):
            raise AgentNotReady(f"run {run_uid}: {run.builder.n_seen} of {n_points} points seen")
        return run.classify_and_choose(n_points)


class LocalAgent:
    """The in-process plan/agent channel: the agent runs synchronously inside the RunEngine's thread.

    The RunEngine hands every document to ``document_callback`` before the plan resumes, so by the
    time the plan asks, the agent has seen the point; no waiting is involved.

    Parameters
    ----------
    classifier : ClassifierLike
        The model.
    grid : np.ndarray, optional
        Angles of the classifier's CAM, degrees.
    inference_threads, model_source
        See `ScanAgent`.
    """

    kind = "local"

    def __init__(
        self,
        classifier: ClassifierLike,
        grid: np.ndarray | None = None,
        inference_threads: int | None = 1,
        model_source: Callable[[], ClassifierLike] | None = None,
    ) -> None:
        self.agent = ScanAgent(classifier, grid, inference_threads, model_source)

    @property
    def document_callback(self) -> ScanAgent:
        """Subscribe this to the run (the plan does so for the run's duration)."""
        return self.agent

    def describe(self, timeout: float = 1.0) -> dict[str, Any]:
        """Model identity (never blocks)."""
        return {**self.agent.describe(), "agent": self.kind}

    def ask(self, run_uid: str, n_points: int, timeout: float = 1.0) -> Decision:
        """The next decision; raises (AgentNotReady, model errors) instead of hanging."""
        return self.agent.decision_for(run_uid, n_points, timeout=0.0)

    def latencies_ms(self, run_uid: str) -> list[float]:
        """Agent-side latencies of a run's decisions, milliseconds."""
        return list(self.agent.run(run_uid).latencies_ms)

    def close(self) -> None:
        """Nothing to release in-process."""
