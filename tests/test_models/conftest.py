"""Fixtures shared by the model tests."""
import pytest
import torch


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    # tiny tensors: intra-op threading only adds synchronisation, and on a
    # busy 2-core machine spinning worker threads slow the tests 10-20x
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
