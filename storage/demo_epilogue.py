"""What `make demo` prints at its end: the exact commands to continue from its runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def demo_epilogue(
    uids: Sequence[str] = (),
    home: Path | None = None,
    space_group: str = "P-3m1",
    command: str = ".venv/bin/xrd-agent",
    python: str = ".venv/bin/python",
) -> str:
    """The closing text of the demo: read the runs back, label them, retrain, open the Prefect UI.

    Parameters
    ----------
    uids : sequence of str
        Full uids of the demo's runs (the first is used in the examples).
    home : Path, optional
        The data directory the demo wrote to; default ``XRD_AGENT_HOME``.
    space_group : str
        Space group used in the labelling example (the true class of the first run, when known).
    command, python : str
        How the user reaches the console script and the interpreter (the demo runs them from the
        repository root without activating the virtual environment).

    Returns
    -------
    str
        Multi-line text, ready to print.
    """
    from patterns.data_home import xrd_agent_home

    home = home or xrd_agent_home(create=False)
    uid = uids[0] if uids else "<UID from `xrd-agent runs`>"
    lines = [
        f"Runs are stored in the embedded tiled catalog under {home}/tiled.",
        "",
        "Read them back:",
        f"  {command} runs",
        f"  {python} -c \"from storage.catalog import open_catalog; cat = open_catalog(); "
        f"run = cat['{uid}']; print(run.metadata['start']); print(run.primary.read())\"",
        "",
        "Label a run (classes are checked against the champion model):",
        f"  {command} label {uid} --space-group {space_group} --by $USER",
        f"  {command} runs --labelled",
        "",
        "Retrain on the labelled runs now (Prefect flow; promotes only if not worse on patterns neither model "
        "trained on, and better on the new scans):",
        f"  {command} flows run",
        "",
        "Open the Prefect UI (http://127.0.0.1:4200), then serve the nightly deployment (02:00) in a second terminal:",
        f"  {command} prefect-ui",
        f"  {command} flows serve --timezone UTC",
    ]
    if str(home) != str(Path("~/.local/share/xrd-agent").expanduser().resolve()):
        lines += ["", f"(These commands need XRD_AGENT_HOME={home} in the environment.)"]
    return "\n".join(lines)
