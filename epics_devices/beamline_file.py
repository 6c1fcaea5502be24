"""The beamline configuration file: which EPICS PVs are the 2theta axis and the detector.

A TOML file (`docs/beamline.example.toml` is a complete, commented example)::

    [connection]
    timeout_s = 2.0                 # every PV must connect within this, or nothing moves

    [motor]                         # the 2theta axis: an EPICS motor record
    name = "tth"
    pv = "XRD:tth"
    limits_deg = [2.0, 80.0]        # optional; narrows the record's .LLM/.HLM

    [detector]                      # a counting detector: acquire, exposure time, counts
    name = "det"
    prefix = "XRD:det:"
    acquire = "Acquire"             # a scaler record: ".CNT"
    exposure_time = "AcquireTime"   #                  ".TP"
    counts = "Counts"               #                  ".S2"
    dwell_s = 1.0                   # optional; written to the exposure-time PV at connection

    [beam]                          # optional: the X-ray wavelength of this beamline
    wavelength_A = 0.7293           # Angstrom; or anode = "Mo" (a tube's K-alpha1)

Errors name the file, the table and the key.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 2.0
#: The file's name in the data directory (``XRD_AGENT_HOME``).
BEAMLINE_FILE_NAME = "beamline.toml"
#: Environment variable naming a beamline file elsewhere.
BEAMLINE_FILE_ENV = "XRD_AGENT_BEAMLINE_FILE"


@dataclass(frozen=True)
class MotorConfig:
    """The ``[motor]`` table: the 2theta axis' motor record, its ophyd name and soft limits (deg)."""

    pv: str
    name: str = "tth"
    limits_deg: tuple[float, float] | None = None


@dataclass(frozen=True)
class DetectorConfig:
    """The ``[detector]`` table: PV prefix and suffixes, ophyd name and dwell (s, None keeps the IOC's)."""

    prefix: str
    name: str = "det"
    acquire: str = "Acquire"
    exposure_time: str = "AcquireTime"
    counts: str = "Counts"
    dwell_s: float | None = None


@dataclass(frozen=True)
class BeamConfig:
    """The optional ``[beam]`` table: the wavelength (Angstrom) or the tube anode, at most one.

    Pattern files measured at this beamline that do not state their wavelength are read with it
    (`xrd-agent classify`). The anode's K-alpha1 is looked up by the reader
    (`patterns.radiation.anode_wavelength`), so an unknown anode is refused there, naming this file.
    """

    wavelength_A: float | None = None
    anode: str | None = None

    @property
    def declared(self) -> bool:
        """Whether the table names a wavelength or an anode."""
        return self.wavelength_A is not None or self.anode is not None


@dataclass(frozen=True)
class EpicsBeamlineConfig:
    """A whole beamline file.

    Attributes
    ----------
    motor : MotorConfig
    detector : DetectorConfig
    timeout_s : float
        Connection timeout for every PV, seconds (> 0).
    beam : BeamConfig
        The ``[beam]`` table (nothing declared when the file has none).
    source : str
        Where the configuration came from (the file path), for error messages.
    """

    motor: MotorConfig
    detector: DetectorConfig
    timeout_s: float = DEFAULT_TIMEOUT_S
    beam: BeamConfig = BeamConfig()
    source: str = "<beamline configuration>"


def _table(record: dict[str, Any], key: str, where: str, required: bool = True) -> dict[str, Any]:
    value = record.get(key, None if required else {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: needs a [{key}] table" if value is None else f"{where}: [{key}] must be a table")
    return value


def _checked(table: dict[str, Any], cls: type, where: str) -> dict[str, Any]:
    """The table's keys, checked against the dataclass' fields (unknown and missing keys named)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    required = [f.name for f in fields(cls) if f.default is MISSING]
    missing = [name for name in required if name not in table]
    if missing:
        raise ValueError(f"{where}: missing {missing}")
    for key, value in table.items():
        if key in ("limits_deg", "dwell_s"):
            continue
        if not (isinstance(value, str) and value.strip()):
            raise ValueError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return dict(table)


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


def _beam(record: dict[str, Any], source: str) -> BeamConfig:
    beam = _table(record, "beam", source, required=False)
    where = f"{source} [beam]"
    unknown = sorted(set(beam) - {"wavelength_A", "anode"})
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: anode, wavelength_A)")
    if len(beam) > 1:
        raise ValueError(f"{where}: give wavelength_A or anode, not both")
    wavelength = beam.get("wavelength_A")
    if wavelength is not None and (isinstance(wavelength, bool) or not isinstance(wavelength, (int, float))
                                   or not (math.isfinite(wavelength) and 0.05 <= wavelength <= 20.0)):
        raise ValueError(f"{where} wavelength_A must be an X-ray wavelength in Angstrom (0.05-20), got {wavelength!r}")
    anode = beam.get("anode")
    if anode is not None and not (isinstance(anode, str) and anode.strip()):
        raise ValueError(f"{where} anode must be an element symbol such as \"Cu\", got {anode!r}")
    return BeamConfig(wavelength_A=None if wavelength is None else float(wavelength),
                      anode=None if anode is None else anode.strip())


def parse_beamline_config(record: dict[str, Any], source: str) -> EpicsBeamlineConfig:
    """Validate a parsed file (a dict) into an `EpicsBeamlineConfig`.

    Raises
    ------
    ValueError
        Naming `source`, the table and the key: unknown or missing keys, empty PV names, limits
        that are not two finite numbers low < high, a non-positive dwell or timeout, a wavelength
        outside 0.05-20 A, both a wavelength and an anode.
    """
    unknown = sorted(set(record) - {"connection", "motor", "detector", "beam"})
    if unknown:
        raise ValueError(f"{source}: unknown tables {unknown} (known: connection, motor, detector, beam)")
    connection = _table(record, "connection", source, required=False)
    if set(connection) - {"timeout_s"}:
        raise ValueError(f"{source} [connection]: unknown keys {sorted(set(connection) - {'timeout_s'})}")
    timeout = _positive(connection.get("timeout_s", DEFAULT_TIMEOUT_S), f"{source} [connection] timeout_s")
    motor = _checked(_table(record, "motor", source), MotorConfig, f"{source} [motor]")
    if "limits_deg" in motor:
        limits = motor["limits_deg"]
        ok = (isinstance(limits, list) and len(limits) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in limits))
        if not (ok and limits[0] < limits[1]):
            raise ValueError(f"{source} [motor] limits_deg must be [low, high] degrees with low < high, got {limits!r}")
        motor["limits_deg"] = (float(limits[0]), float(limits[1]))
    detector = _checked(_table(record, "detector", source), DetectorConfig, f"{source} [detector]")
    if "dwell_s" in detector:
        detector["dwell_s"] = _positive(detector["dwell_s"], f"{source} [detector] dwell_s")
    return EpicsBeamlineConfig(
        motor=MotorConfig(**motor), detector=DetectorConfig(**detector), timeout_s=timeout,
        beam=_beam(record, source), source=source,
    )


def load_beamline_file(path: str | Path) -> EpicsBeamlineConfig:
    """Read and validate a beamline TOML file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    EpicsBeamlineConfig

    Raises
    ------
    FileNotFoundError
        If the file does not exist (the message names it).
    ValueError
        If it is not valid TOML or not a valid configuration (`parse_beamline_config`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: beamline configuration file not found")
    try:
        record = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    return parse_beamline_config(record, str(path))


def configured_beamline_file(home: Path) -> Path | None:
    """The beamline file in force: ``$XRD_AGENT_BEAMLINE_FILE``, else ``home/beamline.toml`` if present.

    Parameters
    ----------
    home : Path
        The data directory (``XRD_AGENT_HOME``).

    Returns
    -------
    Path or None
        None when neither names a file: the simulated beamline is used.

    Raises
    ------
    FileNotFoundError
        If ``XRD_AGENT_BEAMLINE_FILE`` names a file that does not exist.
    """
    named = os.environ.get(BEAMLINE_FILE_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: beamline configuration file not found (from {BEAMLINE_FILE_ENV})")
        return path
    path = Path(home) / BEAMLINE_FILE_NAME
    return path if path.is_file() else None
