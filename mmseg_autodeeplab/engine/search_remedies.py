"""Remedies against first-order DARTS collapse, as search-loop options.

Each is off unless its ``train_cfg`` key is given, so the paper's search
stays the default one setting away:

* ``arch_noise`` (SDARTS-RS, Chen & Hsieh 2020): the weight step sees α
  plus uniform noise, so the weights are trained for a neighbourhood of α
  and the α/β step does not exploit a sharp point of the supernet;
* ``op_dropout`` (P-DARTS, Chen et al. 2019): dropout on the outputs of the
  parameter-free operators (``skip_connect`` by default), decayed linearly
  over the search, so the weights cannot lean on the shortcut that makes
  skips win early;
* ``arch_sampling`` (SPOS, then GDAS-style): every weight step trains ONE
  discrete architecture, drawn uniformly for the first part of the search
  and from α/β afterwards, and the α/β step follows REINFORCE over discrete
  architectures drawn from α/β; the supernet's weights are then trained for
  the discrete networks the decode hands out, instead of a soft mixture no
  decoded network ever computes;
* ``arch_early_stop`` (DARTS+, Liang et al. 2019): α/β updates stop at the
  end of the first epoch whose decoded cell holds ``max_count`` or more
  ``op`` operators; the weights keep training, the genotype is frozen.
"""
import contextlib
import inspect

import numpy as np
import torch

from ..search_space import check_op_names, decode_cell
from ..search_space.decode import genotype_weights
from ..search_space.sampling import (genotype_log_prob, sample_genotype,
                                     sample_genotype_from)
from ..utils.checks import is_integer


def _build(cls, name, cfg):
    """``cls(**cfg)`` of the ``train_cfg.<name>`` dict; None stays None."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise ValueError(f'train_cfg.{name}: expected a dict, got {cfg!r}')
    allowed = inspect.signature(cls).parameters
    for key in cfg:
        if key not in allowed:
            raise ValueError(f'train_cfg.{name}: unknown key {key!r}; '
                             f'expected one of {", ".join(allowed)}')
    return cls(**cfg)


class ArchNoise:
    """SDARTS-RS: α + U(-eps, eps) during the weight step.

    Args:
        eps (float): half-width of the uniform noise added to α's logits.
    """

    def __init__(self, eps):
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or \
                eps <= 0:
            raise ValueError(f'train_cfg.arch_noise.eps: expected a positive '
                             f'number, got {eps!r}')
        self.eps = float(eps)

    @classmethod
    def build(cls, cfg):
        return _build(cls, 'arch_noise', cfg)

    @contextlib.contextmanager
    def applied(self, alphas):
        """Perturb ``alphas`` (an ``(E, P)`` parameter) in place for the
        body; restored bit for bit afterwards."""
        saved = alphas.detach().clone()
        with torch.no_grad():
            alphas.add_(torch.empty_like(alphas).uniform_(
                -self.eps, self.eps))
        try:
            yield
        finally:
            with torch.no_grad():
                alphas.copy_(saved)


class OpDropout:
    """P-DARTS: dropout on named operators' outputs, ``prob`` decayed
    linearly to 0 over the search (``decay='linear'``) or constant.

    Args:
        prob (float): initial drop probability in [0, 1).
        ops (Sequence[str]): operators whose outputs are dropped.
        decay (str): ``'linear'`` or ``'none'``.
    """

    def __init__(self, prob, ops=('skip_connect', ), decay='linear'):
        if not isinstance(prob, (int, float)) or not 0 <= prob < 1:
            raise ValueError(f'train_cfg.op_dropout.prob: expected a number '
                             f'in [0, 1), got {prob!r}')
        check_op_names(ops, 'train_cfg.op_dropout.ops')
        if decay not in ('linear', 'none'):
            raise ValueError(f"train_cfg.op_dropout.decay: expected 'linear' "
                             f"or 'none', got {decay!r}")
        self.prob, self.ops, self.decay = float(prob), tuple(ops), decay

    @classmethod
    def build(cls, cfg):
        return _build(cls, 'op_dropout', cfg)

    def prob_at(self, progress):
        """Drop probability at ``progress`` in [0, 1] of the search."""
        if self.decay == 'none':
            return self.prob
        return self.prob * max(0.0, 1.0 - progress)

    def update(self, supernet, progress):
        supernet.set_op_dropout(self.prob_at(progress), self.ops)


class ArchEarlyStop:
    """DARTS+: stop α/β once the decoded cell holds ``max_count`` or more
    ``op`` operators.

    Args:
        max_count (int): the count that stops α/β (DARTS+: 2 skips).
        op (str): the operator counted.
    """

    def __init__(self, max_count=2, op='skip_connect'):
        if not is_integer(max_count, 1):
            raise ValueError('train_cfg.arch_early_stop.max_count: expected '
                             f'a positive integer, got {max_count!r}')
        check_op_names([op], 'train_cfg.arch_early_stop.op')
        self.max_count, self.op = max_count, op

    @classmethod
    def build(cls, cfg):
        return _build(cls, 'arch_early_stop', cfg)

    def count(self, alphas, primitives):
        """How many ``op`` the greedy decode of raw ``alphas`` keeps."""
        cell = decode_cell(alphas.detach().float().cpu(), primitives)
        return sum(op == self.op for block in cell.blocks
                   for _, op in block)

    def triggered(self, alphas, primitives):
        return self.count(alphas, primitives) >= self.max_count


class ArchSampling:
    """Single-path supernet training: one discrete architecture per step.

    Weight step: the supernet computes one genotype, drawn uniformly over
    the space (SPOS) while ``progress < uniform_until``, afterwards from α/β
    (:func:`~..search_space.sampling.sample_genotype_from`) at a temperature
    annealed linearly from ``temperature[0]`` to ``temperature[1]``.
    Draws use a generator seeded from torch's RNG, which the loop's
    checkpoints carry: resume stays exact.

    Args:
        uniform_until (float): fraction of the search in [0, 1] trained on
            uniform draws (1: SPOS throughout).
        temperature (tuple[float, float]): start and end temperature (> 0)
            of the draws from α/β.
        arch_step (str): ``'reinforce'`` (two genotypes drawn from α/β at
            the same temperature, each computed without gradients; α/β
            follow the score-function gradient of the expected loss, each
            draw's loss against the pair's mean as baseline) or ``'mixed'``
            (the paper's soft α/β step on the mixture).
    """

    def __init__(self, uniform_until=0.5, temperature=(1.0, 1.0),
                 arch_step='reinforce'):
        if not isinstance(uniform_until, (int, float)) or \
                isinstance(uniform_until, bool) or \
                not 0 <= uniform_until <= 1:
            raise ValueError('train_cfg.arch_sampling.uniform_until: '
                             f'expected a number in [0, 1], got '
                             f'{uniform_until!r}')
        if not (isinstance(temperature, (list, tuple)) and
                len(temperature) == 2 and all(
                    isinstance(t, (int, float)) and not isinstance(t, bool)
                    and t > 0 for t in temperature)):
            raise ValueError('train_cfg.arch_sampling.temperature: expected '
                             f'two positive numbers, got {temperature!r}')
        if arch_step not in ('reinforce', 'mixed'):
            raise ValueError("train_cfg.arch_sampling.arch_step: expected "
                             f"'reinforce' or 'mixed', got {arch_step!r}")
        self.uniform_until = float(uniform_until)
        self.temperature = tuple(float(t) for t in temperature)
        self.arch_step = arch_step

    @classmethod
    def build(cls, cfg):
        return _build(cls, 'arch_sampling', cfg)

    def temperature_at(self, progress):
        """Temperature of the draws from α/β at ``progress`` in [0, 1]."""
        t0, t1 = self.temperature
        if self.uniform_until >= 1:
            return t1
        frac = (progress - self.uniform_until) / (1 - self.uniform_until)
        return t0 + (t1 - t0) * min(1.0, max(0.0, frac))

    @staticmethod
    def _rng():
        # seeded from torch's global RNG (saved in the loop's checkpoints)
        return np.random.default_rng(int(torch.randint(2**62, ()).item()))

    def draw(self, supernet, progress):
        """The genotype the weight step at ``progress`` trains."""
        space = supernet.search_space()
        if progress < self.uniform_until:
            return sample_genotype(self._rng(), space)
        return sample_genotype_from(self._rng(), supernet.alphas,
                                    supernet.betas, space,
                                    self.temperature_at(progress))

    def weight_step(self, supernet, progress):
        """Context: the weight step computes one drawn genotype."""
        genotype = self.draw(supernet, progress)
        return supernet.fixed_arch(*genotype_weights(
            genotype, supernet.num_levels, supernet.alphas.dtype))

    def reinforce_loss(self, forward_loss, supernet, progress):
        """REINFORCE with a two-draw baseline.

        Args:
            forward_loss (callable): ``() -> (loss, log_vars)`` of the
                supernet on the α/β batch (mmseg's ``parse_losses``).
            supernet (AutoDeepLabSupernet): its α/β are the policy.
            progress (float): position in the search, for the temperature.

        Returns:
            tuple[Tensor, dict]: a surrogate whose gradient w.r.t. α/β is
            the estimate of the expected loss's gradient, and the mean
            draw's log variables.
        """
        temperature = self.temperature_at(progress)
        space, rng = supernet.search_space(), self._rng()
        draws = [sample_genotype_from(rng, supernet.alphas, supernet.betas,
                                      space, temperature) for _ in range(2)]
        losses, log_vars = [], {}
        with torch.no_grad():
            for g in draws:
                with supernet.fixed_arch(*genotype_weights(
                        g, supernet.num_levels, supernet.alphas.dtype)):
                    loss, logs = forward_loss()
                losses.append(float(loss))
                for k, v in logs.items():
                    log_vars[k] = log_vars.get(k, 0) + v / len(draws)
        mean = sum(losses) / len(losses)
        surrogate = sum((loss - mean) * genotype_log_prob(
            g, supernet.alphas, supernet.betas, temperature)
            for g, loss in zip(draws, losses))
        return surrogate, log_vars
