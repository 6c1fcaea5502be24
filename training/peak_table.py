"""A pool of structures as flat peak tables, ready for batched rendering.

Each structure enters once as a :class:`PhaseEntry`: its reflection families (Miller indices,
multiplicity x |F|^2), its crystal system (which lattice variations keep its symmetry) and, for
March-Dollase texture, the squared cosines between every family member and each of a few
candidate preferred directions, compressed to the distinct values with their member fractions
(a cubic {hkl} family has up to 48 members but only a handful of distinct angles to (100)).
:class:`PeakTable` concatenates the entries into flat tensors, indexed per structure by an
offset and a count, so a batch of patterns gathers its rows with one index operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.reflections import Reflections

__all__ = ["PhaseEntry", "PeakTable", "crystal_system", "lattice_matrices", "phase_entry"]

#: Generic low-index texture directions offered to every structure beside its known film habits,
#: in order of preference; symmetry-equivalent ones (same reflection family) are offered once.
GENERIC_DIRECTIONS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1), (0, 1, 1), (1, -1, 0), (2, 1, 0), (1, 0, 2),
)
N_DIRECTIONS = 4  # candidate preferred directions per structure
HABIT_SHARE = 0.7  # probability that a textured film grows along a known habit, when it has one
_SYSTEMS = ("cubic", "tetragonal", "hexagonal", "orthorhombic", "monoclinic")


def crystal_system(abc: np.ndarray, angles: np.ndarray) -> str:
    """Lattice family of the cell's metric: which variations keep it ("monoclinic" also stands
    for any cell with one oblique angle or more)."""
    a, b, c = abc
    if np.allclose(angles, 90.0, atol=1e-3):
        if np.isclose(a, b, rtol=1e-4) and np.isclose(b, c, rtol=1e-4):
            return "cubic"
        return "tetragonal" if np.isclose(a, b, rtol=1e-4) else "orthorhombic"
    if np.allclose(angles, (90.0, 90.0, 120.0), atol=1e-3) and np.isclose(a, b, rtol=1e-4):
        return "hexagonal"
    return "monoclinic"


@dataclass(frozen=True)
class PhaseEntry:
    """One structure's rows of the peak table (numpy, float32 where stored in bulk).

    Attributes
    ----------
    name, space_group, origin, citation_key : str
        Provenance and label.
    contains_lead : bool
        Whether PbI2 is a plausible impurity of a film of it.
    system : str
        :func:`crystal_system` of the cell.
    abc, angles : numpy.ndarray [3]
        Lattice, angstrom and degrees.
    hkl : numpy.ndarray [P, 3]
        Representative Miller indices.
    strength : numpy.ndarray [P]
        Multiplicity x |F|^2 (electrons^2), without the angle-dependent factors.
    cos2 : numpy.ndarray [P, N_DIRECTIONS, U]
        Distinct squared cosines between members and each candidate direction.
    cos2_weight : numpy.ndarray [P, N_DIRECTIONS, U]
        Fraction of the family's members at each value (0 for padding).
    direction_weights : numpy.ndarray [N_DIRECTIONS]
        Probability of each candidate direction.
    directions : numpy.ndarray [N_DIRECTIONS, 3]
        The candidate directions (plane normals, Miller indices).
    """

    name: str
    space_group: str
    origin: str
    citation_key: str
    contains_lead: bool
    system: str
    abc: np.ndarray
    angles: np.ndarray
    hkl: np.ndarray
    strength: np.ndarray
    cos2: np.ndarray
    cos2_weight: np.ndarray
    direction_weights: np.ndarray
    directions: np.ndarray


def _family_lookup(members: np.ndarray) -> dict[tuple[int, int, int], int]:
    """(h, k, l) -> index of the reflection family holding it, from NaN-padded members [P, M, 3]."""
    lookup: dict[tuple[int, int, int], int] = {}
    for family, rows in enumerate(members):
        for h in rows[~np.isnan(rows[:, 0])].astype(int).tolist():
            lookup[tuple(h)] = family
    return lookup


def _direction_family(direction: tuple[int, int, int], lookup: dict[tuple[int, int, int], int]) -> int | tuple:
    """Family of the first present order n (h, k, l), n = 1..6 (odd orders may be extinct), or the
    direction itself when no order is in the list (then it is only equivalent to itself)."""
    for n in range(1, 7):
        family = lookup.get(tuple(n * v for v in direction))
        if family is not None:
            return family
    return direction


def _candidate_directions(habits: tuple[tuple[int, int, int], ...], members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """N_DIRECTIONS symmetry-distinct directions: the known habits first, then generic ones (two
    directions are equivalent when their reflections fall in one family); and their weights."""
    lookup = _family_lookup(members)
    chosen: list[tuple[int, int, int]] = []
    seen: set = set()
    for direction in [tuple(h) for h in habits] + list(GENERIC_DIRECTIONS):
        family = _direction_family(direction, lookup)
        if family not in seen and len(chosen) < N_DIRECTIONS:
            chosen.append(direction)
            seen.add(family)
    n_habit = min(len(habits), len(chosen))
    rest = len(chosen) - n_habit
    if n_habit == 0 or rest == 0:
        weights = np.full(len(chosen), 1.0 / len(chosen))
    else:
        weights = np.array([HABIT_SHARE / n_habit] * n_habit + [(1 - HABIT_SHARE) / rest] * rest)
    while len(chosen) < N_DIRECTIONS:  # too few distinct directions: pad with never-drawn copies
        chosen.append(chosen[-1])
        weights = np.append(weights, 0.0)
    return np.asarray(chosen, dtype=float), weights / weights.sum()


def _distinct_cos2(members: np.ndarray, metric: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct squared cosines [P, D, U] between members [P, M, 3] (NaN padded) and each
    direction [D, 3] (as plane normals), with the fraction of members at each value."""
    valid = ~np.isnan(members[..., 0])  # [P, M]
    h = np.nan_to_num(members)
    g_dot_p = np.einsum("pmi,ij,dj->pdm", h, metric, directions)
    g2 = np.einsum("pmi,ij,pmj->pm", h, metric, h)
    p2 = np.einsum("di,ij,dj->d", directions, metric, directions)
    cos2 = np.where(valid[:, None, :], g_dot_p**2 / (np.where(valid, g2, 1.0)[:, None, :] * p2[None, :, None]), np.inf)
    cos2 = np.sort(np.round(np.clip(cos2, 0.0, None), 6), axis=-1)  # padding (inf) sorts last
    with np.errstate(invalid="ignore"):  # inf - inf between padding entries
        new_value = np.concatenate([np.ones_like(cos2[..., :1], dtype=bool), np.diff(cos2, axis=-1) > 0], axis=-1)
    finite = np.isfinite(cos2)
    group = np.where(finite, np.cumsum(new_value, axis=-1) - 1, 0)  # [P, D, M]; padding adds 0 to group 0
    share = np.where(finite, 1.0 / valid.sum(axis=1)[:, None, None], 0.0)
    n_groups = int(group.max()) + 1
    p, d, m = cos2.shape
    flat = (np.arange(p * d)[:, None] * n_groups + group.reshape(p * d, m)).ravel()
    weight = np.bincount(flat, weights=share.ravel(), minlength=p * d * n_groups).reshape(p, d, n_groups)
    value = np.zeros((p * d * n_groups,))
    value[flat[finite.ravel()]] = cos2.ravel()[finite.ravel()]
    return value.reshape(p, d, n_groups), weight


def phase_entry(
    name: str, space_group: str, origin: str, elements: set[str], reflections: Reflections,
    habits: tuple[tuple[int, int, int], ...] = (), min_relative_strength: float = 2e-5, citation_key: str = "",
) -> PhaseEntry:
    """A :class:`PhaseEntry` from a structure's reflections; families whose powder intensity is
    below ``min_relative_strength`` of the strongest are dropped (texture can raise a reflection
    by at most r^-3 ~ 300 at r = 0.15, so the cut stays well below anything visible)."""
    wavelength = 1.5406  # only ranks the families: the renderer recomputes angles per pattern
    powder = np.nan_to_num(reflections.powder_intensity(wavelength))
    keep = powder >= min_relative_strength * powder.max()
    metric = np.linalg.inv(reflections.lattice_matrix @ reflections.lattice_matrix.T)
    directions, direction_weights = _candidate_directions(habits, reflections.members)
    cos2, weight = _distinct_cos2(reflections.members[keep], metric, directions)
    return PhaseEntry(
        name=name, space_group=space_group, origin=origin, citation_key=citation_key or name, contains_lead="Pb" in elements,
        system=crystal_system(reflections.abc, reflections.angles), abc=reflections.abc, angles=reflections.angles,
        hkl=reflections.hkl[keep], strength=(reflections.multiplicity * reflections.f_squared)[keep],
        cos2=cos2, cos2_weight=weight, direction_weights=direction_weights, directions=directions,
    )


class PeakTable:
    """Flat tensors over a list of :class:`PhaseEntry` (rebuilt when an entry is replaced).

    Attributes (after :meth:`tensors`): ``hkl`` [R, 3], ``strength`` [R], ``cos2`` and
    ``cos2_weight`` [R, N_DIRECTIONS, U], ``offset`` and ``count`` [S] (int64), ``abc`` and
    ``angles`` [S, 3], ``system`` [S] (index into ("cubic", "tetragonal", "hexagonal",
    "orthorhombic", "monoclinic")), ``direction_weights`` [S, N_DIRECTIONS].
    """

    def __init__(self, entries: list[PhaseEntry], device: torch.device) -> None:
        self.entries = list(entries)
        self.device = device
        self._tensors: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def replace(self, index: int, entry: PhaseEntry) -> None:
        """Put ``entry`` in slot ``index`` (the tensors are rebuilt on next use)."""
        self.entries[index] = entry
        self._tensors = None

    def tensors(self) -> dict[str, torch.Tensor]:
        """The flat tensors on ``self.device`` (float32 / int64)."""
        if self._tensors is None:
            self._tensors = self._build()
        return self._tensors

    def _build(self) -> dict[str, torch.Tensor]:
        n_distinct = max(e.cos2.shape[2] for e in self.entries)

        def padded(name: str) -> np.ndarray:
            return np.concatenate([np.pad(getattr(e, name), ((0, 0), (0, 0), (0, n_distinct - e.cos2.shape[2]))) for e in self.entries])

        count = np.array([len(e.strength) for e in self.entries])
        arrays = {
            "hkl": np.concatenate([e.hkl for e in self.entries]),
            "strength": np.concatenate([e.strength for e in self.entries]),
            "cos2": padded("cos2"),
            "cos2_weight": padded("cos2_weight"),
            "abc": np.stack([e.abc for e in self.entries]),
            "angles": np.stack([e.angles for e in self.entries]),
            "direction_weights": np.stack([e.direction_weights for e in self.entries]),
        }
        out = {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in arrays.items()}
        out["count"] = torch.as_tensor(count, dtype=torch.int64, device=self.device)
        out["offset"] = torch.as_tensor(np.concatenate([[0], np.cumsum(count)[:-1]]), dtype=torch.int64, device=self.device)
        out["system"] = torch.as_tensor([_SYSTEMS.index(e.system) for e in self.entries], dtype=torch.int64, device=self.device)
        return out


def lattice_matrices(abc: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Lattice matrices [B, 3, 3] (rows a, b, c; pymatgen's convention) from [B, 3] parameters
    (angstrom, degrees)."""
    alpha, beta, gamma = (torch.deg2rad(angles[:, i]) for i in range(3))
    cos_a, cos_b, cos_g = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    gamma_star = torch.arccos(torch.clamp((cos_a * cos_b - cos_g) / (torch.sin(alpha) * torch.sin(beta)), -1.0, 1.0))
    a, b, c = abc[:, 0], abc[:, 1], abc[:, 2]
    zero = torch.zeros_like(a)
    rows = [
        torch.stack([a * torch.sin(beta), zero, a * cos_b], dim=1),
        torch.stack([-b * torch.sin(alpha) * torch.cos(gamma_star), b * torch.sin(alpha) * torch.sin(gamma_star), b * cos_a], dim=1),
        torch.stack([zero, zero, c], dim=1),
    ]
    return torch.stack(rows, dim=1)

