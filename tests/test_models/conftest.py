"""Fixtures shared by the model tests."""
import pytest


@pytest.fixture(scope='module', autouse=True)
def _one_thread(one_thread):
    """Every model test module runs torch on one thread (tests/conftest.py)."""
