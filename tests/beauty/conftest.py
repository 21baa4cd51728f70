"""Fixtures of the beautification tests: a synthetic 68-point face."""

import pytest

from .synthetic import synthetic_face


@pytest.fixture(scope="session")
def make_face():
    """``make_face(scale=1, offset=(0, 0))``: the synthetic face's (68, 2) points."""
    return synthetic_face


@pytest.fixture(scope="session")
def lm():
    """The synthetic face at offset (20, 10), 160 px wide, in a 240 x 260 image."""
    return synthetic_face(offset=(20.0, 10.0))
