"""The evidence of a retrain: accuracy, macro F1 and confusion matrices, and their markdown artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from prefect.artifacts import create_markdown_artifact

from flows.gate import GateDecision


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on one set.

    Attributes
    ----------
    n : int
        Patterns evaluated.
    accuracy : float or None
        Fraction correct (None when ``n == 0``).
    f1_macro : float or None
    confusion : list of list of int
        ``[true class][predicted class]`` counts.
    correct : list of bool
        Per pattern, in the set's order: classified correctly (the gate's paired test uses it).
    """

    n: int
    accuracy: float | None
    f1_macro: float | None
    confusion: list[list[int]]
    correct: list[bool]


def evaluate(model: Any, features: np.ndarray, labels: np.ndarray, n_classes: int) -> Evaluation:
    """Accuracy, macro F1 and confusion matrix of ``model`` on preprocessed ``features``.

    Macro F1 averages over the classes present in the truth or the predictions (scikit-learn's
    default ``labels``), as :func:`evaluation.metrics.f1_scores` does for the benchmarks.
    """
    if len(labels) == 0:
        return scores(np.zeros(0, np.int64), labels, n_classes)
    return scores(np.asarray(model.predict_proba(features)).argmax(axis=1), labels, n_classes)


def scores(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> Evaluation:
    """Accuracy, macro F1 and confusion matrix of predicted class indices (int [N]) against ``labels`` (int [N]).

    A prediction of -1 (no answer) counts as wrong and stays out of the confusion matrix.
    """
    from sklearn.metrics import confusion_matrix, f1_score

    predicted, labels = np.asarray(predicted, np.int64), np.asarray(labels, np.int64)
    if predicted.shape != labels.shape:
        raise ValueError(f"predictions {predicted.shape} and labels {labels.shape} differ in shape")
    if len(labels) == 0:
        return Evaluation(0, None, None, np.zeros((n_classes, n_classes), int).tolist(), [])
    matrix = confusion_matrix(labels, predicted, labels=np.arange(n_classes))
    return Evaluation(
        n=int(len(labels)),
        accuracy=float((predicted == labels).mean()),
        f1_macro=float(f1_score(labels, predicted, average="macro", zero_division=0.0)),
        confusion=np.asarray(matrix, dtype=int).tolist(),
        correct=[bool(v) for v in predicted == labels],
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


#: Confidence level of the accuracy intervals.
CI_LEVEL = 0.95


def accuracy_interval(accuracy: float | None, n: int, level: float = CI_LEVEL) -> tuple[float, float] | None:
    """Wilson score interval of an accuracy measured on ``n`` patterns (scipy's ``binomtest``); None when n is 0."""
    from scipy.stats import binomtest

    if accuracy is None or n <= 0:
        return None
    interval = binomtest(int(round(accuracy * n)), n).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


def accuracy_text(evaluation: dict[str, Any] | Evaluation, digits: int = 3) -> str:
    """``0.792 [0.595, 0.908] (n=24)``: accuracy, its 95 % Wilson interval and the patterns it rests on."""
    data = evaluation if isinstance(evaluation, dict) else evaluation.__dict__
    accuracy, n = data.get("accuracy"), int(data.get("n") or 0)
    interval = accuracy_interval(accuracy, n)
    if interval is None:
        return "- (n=0)"
    return f"{accuracy:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}] (n={n})"


#: The gate's parts (:data:`flows.gate_evaluation.PARTS`) as the tables name them.
PART_TITLES = {"heldout": "held-out measured", "unseen": "unseen materials", "new": "new scans (held-out folds)"}


def metrics_markdown(evals: dict[str, Evaluation], decision: GateDecision, info: dict[str, Any]) -> str:
    """The metrics table artifact: both models' accuracy on each part of the gate's evaluation."""
    titles = [f"{PART_TITLES[p]} [{CI_LEVEL:.0%} interval]" for p in PART_TITLES]
    rows = ["| model | version | " + " | ".join(titles) + " | held-out macro F1 |", "|---" * (len(titles) + 3) + "|"]
    for who in ("challenger", "champion"):
        cells = " | ".join(accuracy_text(evals[f"{who}_{p}"], 4) for p in PART_TITLES)
        rows.append(f"| {who} | `{info[who + '_version']}` | {cells} | {_fmt(evals[f'{who}_heldout'].f1_macro)} |")
    lines = [
        f"## Retrain of the {info['task']} model",
        "",
        *rows,
        "",
        f"**Gate:** {decision.reason}.",
        "",
        f"Training data: {info['n_labelled']} labelled scans ({info['n_new']} new since the last retrain) "
        f"+ {info['n_measured_train']} measured (training part) + {info['n_simulated']} simulated patterns; "
        f"{info['members']} members.",
        f"Evaluation, every pattern unseen by both models: {info['n_heldout']} held-out measured AUTO-XRD patterns"
        + (f" ({len(info['heldout_excluded'])} excluded: replayed by labelled runs)" if info["heldout_excluded"] else "")
        + f", {info['n_unseen']} films of unseen materials, {info['n_gate_scans']} scans labelled since the champion's "
        "training, the challenger answering each from the member that held out its sample's fold"
        + (f" ({info['n_gate_replays']} left out: replays of measured patterns both trained on)"
           if info["n_gate_replays"] else "") + ".",
    ]
    if info["champion_saw_heldout"]:
        lines.append(
            "**Caution:** the champion was trained on measured patterns without this held-out split, so its "
            "held-out score is (partly) in-sample and optimistic; the gate then favours keeping it."
        )
    return "\n".join(lines)


def confusion_markdown(evals: dict[str, Evaluation], classes: tuple[str, ...]) -> str:
    """Confusion matrices (rows: true class, columns: predicted) of both models on the held-out measured patterns."""
    out = []
    for who in ("challenger", "champion"):
        matrix = evals[f"{who}_heldout"].confusion
        out += [f"### {who}: held-out confusion matrix (rows true, columns predicted)", ""]
        out.append("| true \\ predicted | " + " | ".join(classes) + " |")
        out.append("|---" * (len(classes) + 1) + "|")
        for name, row in zip(classes, matrix):
            out.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
        out.append("")
    return "\n".join(out)


def publish_artifacts(evals: dict[str, Evaluation], decision: GateDecision, info: dict[str, Any],
                      classes: tuple[str, ...]) -> str:
    """The run's three markdown artifacts (metrics, confusion matrices, model version); returns the champion's version."""
    create_markdown_artifact(metrics_markdown(evals, decision, info), key="retrain-metrics", description="retrain metrics")
    create_markdown_artifact(confusion_markdown(evals, classes), key="retrain-confusion-matrix",
                             description="held-out confusion matrices")
    challenger, previous = info["challenger_version"], info["champion_version"]
    now_champion = challenger if decision.promote else previous
    create_markdown_artifact(
        f"Champion ({info['task']}): `{now_champion}`\n\nChallenger: `{challenger}` "
        f"({'promoted' if decision.promote else 'rejected'}); previous champion: `{previous}`.",
        key="model-version",
        description="model version",
    )
    return now_champion


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The flow's result (:func:`flows.retrain.retrain_flow`) as a few lines for a terminal.

    The gate's decision and reason, a table of both models (version, accuracy with its 95 %
    interval on the held-out measured patterns, the films of unseen materials and the new scans'
    held-out folds) and what the run trained on; a skipped run is its reason alone.
    """
    status = str(result.get("status", "?"))
    head = f"retrain {status.upper()}"
    if status == "skipped":
        return [head, str(result.get("reason", ""))]
    metrics = result.get("metrics", {})
    versions = {"challenger": result.get("challenger_version"), "champion": result.get("previous_champion_version")}
    lines = [head + f": {result.get('reason', '')}", "",
             (f"{'model':10}  {'version':8}  " + "  ".join(f"{PART_TITLES[p][:26]:29}" for p in PART_TITLES)).rstrip()]
    for who in ("challenger", "champion"):
        cells = "  ".join(f"{accuracy_text(metrics.get(f'{who}_{p}', {})):29}" for p in PART_TITLES)
        lines.append(f"{who:10}  {str(versions[who])[:8]:8}  {cells}".rstrip())
    lines += ["", f"champion now {result.get('champion_version')}; {result.get('n_labelled')} labelled runs "
              f"({result.get('n_new')} new); {float(result.get('wall_s', 0.0)):.0f} s; flow run {result.get('flow_run_id')}"]
    return lines
