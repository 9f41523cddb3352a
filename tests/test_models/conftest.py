"""Fixtures shared by the model tests."""
import pytest


@pytest.fixture(scope='module', autouse=True)
def _one_thread(one_thread):
    """Every model test module runs torch on one thread (tests/conftest.py)."""


@pytest.fixture
def saved_tensors():
    """``saved_tensors(fn)``: the tensors autograd keeps for backward while
    ``fn()`` runs, in order."""
    import torch

    def run(fn):
        kept = []

        def pack(t):
            kept.append(t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return kept

    return run
