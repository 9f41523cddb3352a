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
* ``arch_early_stop`` (DARTS+, Liang et al. 2019): α/β updates stop at the
  end of the first epoch whose decoded cell holds ``max_count`` or more
  ``op`` operators; the weights keep training, the genotype is frozen.
"""
import contextlib
import inspect

import torch

from ..search_space import check_op_names, decode_cell
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

