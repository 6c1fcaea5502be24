"""training.ambiguity: films whose visible peaks are the orders of one reflection row."""

from __future__ import annotations

import numpy as np
import pytest

from training.ambiguity import is_one_row, one_row_fraction
from training.generator import FilmGenerator


def _two_theta(d: np.ndarray) -> np.ndarray:
    return 2 * np.degrees(np.arcsin(1.5406 / (2 * d)))


def test_orders_of_one_spacing_are_one_row():
    a = 5.87  # CsPbBr3 (100) texture: h00 orders
    assert is_one_row(_two_theta(a / np.array([1, 2, 3])), np.array([1.0, 0.6, 0.05]))
    # the same angles from a doubled cell's (200), (400), (600): indistinguishable, also one row
    assert is_one_row(_two_theta(2 * a / np.array([2, 4, 6])), np.array([1.0, 0.6, 0.05]))
    # a powder pattern adds (110) and (111): no longer one row
    powder = _two_theta(a / np.sqrt(np.array([1, 2, 3, 4])))
    assert not is_one_row(powder, np.array([1.0, 0.9, 0.3, 0.5]))
    # ... unless those peaks are below the visibility threshold
    assert is_one_row(powder, np.array([1.0, 0.001, 0.002, 0.5]), threshold=0.01)
    assert is_one_row(np.array([20.0]), np.array([1.0]))  # one visible peak: one row


def test_fraction_per_class_is_measured():
    generator = FilmGenerator(seed=0, device="cpu", structures_per_class=1, include_cifs=False)
    strict = one_row_fraction(generator, 40, threshold=0.01)
    loose = one_row_fraction(generator, 40, threshold=0.05)
    assert set(strict) == set(generator.classes) | {"all"}
    assert all(0.0 <= v <= 1.0 for v in strict.values())
    assert loose["all"] >= strict["all"]  # fewer visible peaks: more films are one row
    assert 0.0 < loose["all"] < 1.0  # textured films exist, and not every film is one row
    with pytest.raises(ValueError, match="films_per_class"):
        one_row_fraction(generator, 0)
