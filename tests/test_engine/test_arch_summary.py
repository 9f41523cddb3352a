"""GenotypeHook's β entropy averages only the nodes the supernet builds."""
import math

import torch

from mmseg_autodeeplab.engine.genotype_hook import arch_summary
from mmseg_autodeeplab.search_space.decode import normalize_betas


class _Net:
    alphas = torch.zeros(20, 8)
    betas = torch.zeros(4, 4, 3)  # L = 4: uniform everywhere

    def normalized_betas(self):
        return normalize_betas(self.betas)


def test_uniform_beta_entropy_over_built_nodes_only():
    # built sources per layer: stem (1), then 2, 3, 4 levels = 10 nodes;
    # /4 and /32 have 2 moves, /8 and /16 have 3
    ln2, ln3 = math.log(2), math.log(3)
    expected = (ln2 + (ln2 + ln3) + (ln2 + 2 * ln3)
                + (2 * ln2 + 2 * ln3)) / 10
    s = arch_summary(_Net())
    assert s['alpha_entropy'] == pytest_approx(math.log(8))
    assert s['beta_entropy'] == pytest_approx(expected)


def pytest_approx(x):
    import pytest
    return pytest.approx(x, rel=1e-6)
