"""The configured default beamline and agent, so that ``RE(adaptive_scan())`` needs no arguments.

Configuration, later sources overriding earlier ones:

1. Built-in defaults: the simulated beamline (`sim_devices.make_beamline`) with sample
   ``"CsPbBr3"``, seed 0, and an in-process agent with the champion space-group model of the
   registry under ``XRD_AGENT_HOME/models`` (`models.champion`; the shipped default while nothing
   has been promoted), looked up again at every run start so a nightly promotion is picked up by
   the next run, never mid-scan.
2. ``$XRD_AGENT_HOME/beamline.json`` (``XRD_AGENT_HOME`` defaults to ``~/.local/share/xrd-agent``),
   a JSON object with any of the keys of `BeamlineConfig`, e.g.::

       {"sample": "auto-xrd/MASnI3_2-Theta_Omega", "seed": 3,
        "agent": "remote", "decisions_address": "tcp://127.0.0.1:5579",
        "documents_address": "tcp://127.0.0.1:5577", "timeout_s": 1.0}

3. Environment variables: ``XRD_AGENT_SAMPLE`` (a sample name, or the path of a measured pattern
   file -- ``.xy``, ``.xrdml``, any format `patterns.read_pattern` reads -- or of a ``.cif``:
   `sim_devices.samples.sample_from_file`), ``XRD_AGENT_SEED`` (integer),
   ``XRD_AGENT_AGENT`` (``local`` or ``remote``), ``XRD_AGENT_MODEL`` (a saved model directory used
   instead of the shipped default).

A beamline file (TOML: ``$XRD_AGENT_BEAMLINE_FILE``, else ``$XRD_AGENT_HOME/beamline.toml``; see
``docs/beamline.example.toml``) replaces the simulated devices by EPICS ones (`epics_devices`); the
sample and seed then no longer apply.

``agent: "remote"`` makes the plan talk to an agent started with ``xrd-agent serve-agent`` at the
given loopback addresses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from patterns.data_home import xrd_agent_home

CONFIG_FILE_NAME = "beamline.json"


@dataclass(frozen=True)
class BeamlineConfig:
    """What the default beamline and agent are.

    Parameters
    ----------
    sample : str
        Sample on the simulated beamline (a structure name such as ``"CsPbBr3"``, a replayed
        measured pattern ``"auto-xrd/<file stem>"``, or the path of a pattern file or CIF).
    seed : int
        Seed of the simulated counting noise.
    task : str
        Classification task of the default model (``"space_group"`` or ``"dimensionality"``).
    model_path : str or None
        A saved model directory to use instead of the shipped default.
    agent : str
        ``"local"`` (in-process) or ``"remote"`` (``xrd-agent serve-agent``).
    decisions_address, documents_address : str
        Loopback addresses of a remote agent's REP socket and of its document proxy input.
    timeout_s : float
        How long the plan waits for a decision before falling back to fine steps, seconds.
    """

    sample: str = "CsPbBr3"
    seed: int = 0
    task: str = "space_group"
    model_path: str | None = None
    agent: str = "local"
    decisions_address: str = "tcp://127.0.0.1:5579"
    documents_address: str = "tcp://127.0.0.1:5577"
    timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.agent not in ("local", "remote"):
            raise ValueError(f"beamline config: agent must be 'local' or 'remote', got {self.agent!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"beamline config: timeout_s must be > 0, got {self.timeout_s}")


def load_config(path: Path | None = None) -> BeamlineConfig:
    """Read the configuration (defaults, then the JSON file, then environment variables).

    Parameters
    ----------
    path : Path, optional
        The JSON file; default ``$XRD_AGENT_HOME/beamline.json`` (absent is fine).

    Raises
    ------
    ValueError
        On a file that is not a JSON object, unknown keys, or invalid values.
    """
    path = path or xrd_agent_home() / CONFIG_FILE_NAME
    config = BeamlineConfig()
    if path.exists():
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(record).__name__}")
        known = {f.name for f in fields(BeamlineConfig)}
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(known)})")
        config = replace(config, **record)
    overrides: dict[str, Any] = {}
    if os.environ.get("XRD_AGENT_SAMPLE"):
        overrides["sample"] = os.environ["XRD_AGENT_SAMPLE"]
    if os.environ.get("XRD_AGENT_SEED"):
        try:
            overrides["seed"] = int(os.environ["XRD_AGENT_SEED"])
        except ValueError as exc:
            raise ValueError(f"XRD_AGENT_SEED must be an integer, got {os.environ['XRD_AGENT_SEED']!r}") from exc
    if os.environ.get("XRD_AGENT_AGENT"):
        overrides["agent"] = os.environ["XRD_AGENT_AGENT"]
    if os.environ.get("XRD_AGENT_MODEL"):
        overrides["model_path"] = os.environ["XRD_AGENT_MODEL"]
    return replace(config, **overrides)


_beamline: Any = None
_agent: Any = None


def get_beamline(config: BeamlineConfig | None = None) -> Any:
    """The default beamline of this process (made on first use, then reused).

    The EPICS devices of the beamline file (``$XRD_AGENT_BEAMLINE_FILE``, else
    ``$XRD_AGENT_HOME/beamline.toml``; `epics_devices.configured_beamline_file`) when there is one,
    else the simulated beamline of the JSON configuration.

    Returns
    -------
    sim_devices.SimulatedBeamline or epics_devices.EpicsBeamline
        With ``motor`` (``tth``) and ``detector`` (``det``).

    Raises
    ------
    epics_devices.UnreachablePVError
        A PV of the beamline file did not connect within its timeout (the message names it).
    ValueError, FileNotFoundError
        A malformed or missing beamline file (named).
    """
    global _beamline
    if _beamline is None:
        from epics_devices.beamline_file import configured_beamline_file

        epics_file = configured_beamline_file(xrd_agent_home())
        if epics_file is not None:  # a real beamline: connect before anything can move
            from epics_devices import connect_beamline, load_beamline_file

            _beamline = connect_beamline(load_beamline_file(epics_file))
            return _beamline
        from sim_devices import make_beamline

        config = config or load_config()
        _beamline = make_beamline(sample=config.sample, seed=config.seed)
    return _beamline


def model_source(config: BeamlineConfig) -> Callable[[], Any]:
    """What the agent calls at each run start for its model.

    A configured ``model_path`` is loaded once and always returned; otherwise the registry's
    champion (`models.champion.ChampionCache`), reloaded only when a promotion moved its pointer.
    """
    if config.model_path:
        from models.classifier import Classifier

        fixed = Classifier.load(Path(config.model_path))
        return lambda: fixed
    from models.champion import ChampionCache

    return ChampionCache(config.task).get


def load_classifier(config: BeamlineConfig) -> Any:
    """The configured classifier now: ``config.model_path`` when set, else the registry's champion."""
    return model_source(config)()


def get_agent(config: BeamlineConfig | None = None) -> Any:
    """The default agent channel of this process (`LocalAgent` or `RemoteAgent`), made on first use."""
    global _agent
    if _agent is None:
        config = config or load_config()
        if config.agent == "remote":
            from agent.remote import RemoteAgent

            _agent = RemoteAgent(config.decisions_address, config.documents_address)
        else:
            from agent.callback import LocalAgent

            source = agent_model_source(config)
            _agent = LocalAgent(source(), model_source=source)
    return _agent


def agent_model_source(config: BeamlineConfig) -> Callable[[], Any]:
    """The model source of an agent, local or served (`xrd-agent serve-agent`): the configured
    model, remembering the runs labelled since it was trained, with the second class's CAM."""
    return with_top_two_cams(remembering_labelled(model_source(config), config.task))


def remembering_labelled(source: Callable[[], Any], task: str) -> Callable[[], Any]:
    """The model source, each model also remembering the runs labelled in the catalog since it was
    trained (`plans.labelled_memory`); the catalog is opened once, at the first run."""
    import functools

    from patterns.data_home import xrd_agent_home
    from plans.labelled_memory import LabelledMemorySource
    from storage.catalog import open_catalog

    return LabelledMemorySource(source, task, functools.cache(open_catalog),
                                cache_dir=xrd_agent_home() / "cache" / "scans")


def with_top_two_cams(source: Callable[[], Any]) -> Callable[[], Any]:
    """The model source, each model wrapped once in `agent.top_two.TopTwoCams` (the CAM back-step rule
    reads the second class's map); the same wrapper while the model is the same, so the agent keeps it."""
    from agent.top_two import TopTwoCams

    wrapped: dict[int, Any] = {}

    def get() -> Any:
        model = source()
        if id(model) not in wrapped:
            wrapped.clear()
            wrapped[id(model)] = TopTwoCams(model)
        return wrapped[id(model)]

    return get


def default_timeout() -> float:
    """The configured decision timeout, seconds."""
    return load_config().timeout_s


def _check_model_wavelength() -> None:
    """Refuse an adaptive scan on a beamline whose file declares a wavelength other than the model's.

    The agent reads the motor's 2-theta as Cu K-alpha1 angles (the model's axis); at another
    wavelength every peak would sit at the wrong place for it and it would answer wrongly with
    confidence. Converting live scans (motor angles <-> Cu angles through d-spacings) is not built
    yet; until then this is refused in one line before anything connects or moves.

    Raises
    ------
    ValueError
        Naming the beamline file and its wavelength.
    """
    from epics_devices.beamline_file import configured_beamline_file, load_beamline_file
    from patterns.radiation import MODEL_RADIATION, MODEL_WAVELENGTH_A, anode_wavelength

    path = configured_beamline_file(xrd_agent_home())
    if path is None:
        return
    beam = load_beamline_file(path).beam
    wavelength = beam.wavelength_A if beam.anode is None else anode_wavelength(beam.anode)
    if wavelength is not None and abs(wavelength / MODEL_WAVELENGTH_A - 1.0) > 1e-4:
        raise ValueError(
            f"{path} [beam]: this beamline measures at {wavelength:.7g} A, and the agent reads the motor's 2theta as "
            f"{MODEL_RADIATION} ({MODEL_WAVELENGTH_A} A) angles: adaptive scans at another wavelength are not "
            f"supported yet (bp.scan works; `xrd-agent classify` converts a saved scan)")


def configured_adaptive_scan(**kwargs: Any):
    """`plans.adaptive.adaptive_scan` on the configured beamline with the configured agent and timeout.

    What the IPython session binds to ``adaptive_scan``, so ``RE(adaptive_scan())`` needs no
    arguments; any argument given (``detectors``, ``motor``, ``agent``, ``timeout``, thresholds)
    replaces the configured one. The plan itself reads no configuration.

    ``sample`` is the session's own argument: a library name or the path of a measured pattern
    file or CIF, put in the simulated beamline before the scan ("how long would the agent have
    taken on my last scan?"). ``risk`` (the accepted probability of a wrong early answer) is the
    plan's.
    """
    from plans.adaptive import adaptive_scan

    if "detectors" not in kwargs or "motor" not in kwargs:
        _check_model_wavelength()
    sample = kwargs.pop("sample", None)
    if sample is not None:
        beamline = get_beamline()
        if not hasattr(beamline, "set_sample"):
            raise ValueError("sample= needs the simulated beamline; a beamline file names real devices")
        beamline.set_sample(sample)
    if "detectors" not in kwargs or "motor" not in kwargs:
        beamline = get_beamline()
        kwargs.setdefault("detectors", [beamline.detector])
        kwargs.setdefault("motor", beamline.motor)
    if "agent" not in kwargs:
        kwargs["agent"] = get_agent()
    if kwargs.get("timeout") is None:
        kwargs["timeout"] = default_timeout()
    return adaptive_scan(kwargs.pop("detectors"), kwargs.pop("motor"), **kwargs)


def reset() -> None:
    """Forget the cached beamline and agent (tests; a changed configuration)."""
    global _beamline, _agent
    if _agent is not None and hasattr(_agent, "close"):
        _agent.close()
    _beamline = None
    _agent = None
