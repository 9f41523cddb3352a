"""Single-path samplers for a one-shot network: one genotype a step, drawn
from a generator seeded by ``(seed, step, ...)``: the state is plain ints
and lists, and a resumed run draws what an uninterrupted one draws."""
from itertools import combinations

import numpy as np

from ..utils.checks import is_integer
from .decode import max_level
from .genotype import CellGenotype, Genotype
from .primitives import ZERO_OP
from .sampling import sample_genotype


class UniformSampler:
    """SPOS: every step a genotype drawn uniformly from ``space``
    (:func:`~.sampling.sample_genotype`: uniform cells, uniform paths).

    Args:
        space (SearchSpace): the space to draw from.
        seed (int): >= 0.
    """

    def __init__(self, space, seed=0):
        if not is_integer(seed, 0):
            raise ValueError(f'seed: expected an integer >= 0, got {seed!r}')
        self.space, self.seed, self.step = space, seed, 0

    def sample(self):
        """The next :class:`Genotype`."""
        genotype = self._draw(self.step)
        self.step += 1
        return genotype

    def _draw(self, step):
        return sample_genotype(np.random.default_rng([self.seed, step]),
                               self.space)

    def state_dict(self):
        """``dict(type, seed, step)``: plain ints and a string."""
        return dict(type=type(self).__name__, seed=self.seed, step=self.step)

    def load_state_dict(self, state):
        """Continue from :meth:`state_dict`'s ``state``."""
        kind = state.get('type') if isinstance(state, dict) else state
        if kind != type(self).__name__:
            raise ValueError(f'sampler state: type {kind!r:.60}, expected '
                             f'{type(self).__name__!r}')
        for key in ('seed', 'step'):
            if not is_integer(state.get(key), 0):
                raise ValueError(f'sampler state: {key} expected an integer '
                                 f'>= 0, got {state.get(key)!r:.60}')
        self._load_extra(state)
        self.seed, self.step = state['seed'], state['step']

    def _load_extra(self, state):
        pass


class FairSampler(UniformSampler):
    """Strict fairness (FairNAS) adapted to cells with input pairs and a
    path; ``n`` is the number of non-``none`` operators of ``space``.

    Exactly fair:

    * operators: in every group of ``n`` steps (``g * n ... g * n + n - 1``)
      each branch of each block runs every operator exactly once; a block
      keeps its input pair through a group, so each edge it uses does too.
    * input pairs: block ``b`` takes one pair a group, each of its
      ``C(b + 2, 2)`` pairs once in every ``C(b + 2, 2)`` groups (counted
      from group 0); over those ``C(b + 2, 2) * n`` steps each of its edges
      runs every operator exactly ``b + 1`` times. A group cannot hold all
      pairs (15 for block 5 against ``n = 7`` steps).
    * moves: the path leaves each node (a level of layer ``l - 1``; the
      stem for ``l = 0``) by its valid moves in turn: each move once in its
      visits ``r * m ... r * m + m - 1``; ``m = 3`` (down, stay, up) inside,
      2 at level 0 (no down) and at the coarsest level (no up).

    Not exact, because the boundaries forbid it: how often each node is
    visited (set by the walk, not chosen), and so the count of each move
    per layer (layer 0 never moves down). The path is a walk with uniform
    moves, so it visits the finest and coarsest levels more often than
    :class:`UniformSampler`'s uniform paths do.

    Args:
        space (SearchSpace): the space to draw from.
        seed (int): >= 0.
    """

    def __init__(self, space, seed=0):
        super().__init__(space, seed)
        self.ops = [p for p in space.primitives if p != ZERO_OP]
        self.visits = [[0] * space.num_levels
                       for _ in range(space.num_layers)]

    def _perm(self, *key):
        return np.random.default_rng([self.seed, *key]).permutation

    def _draw(self, step):
        space, n = self.space, len(self.ops)
        group, slot = divmod(step, n)
        op_perm = self._perm(0, group)
        blocks = []
        for b in range(space.num_blocks):
            pairs = list(combinations(range(b + 2), 2))
            cycle, k = divmod(group, len(pairs))
            pair = pairs[self._perm(1, b, cycle)(len(pairs))[k]]
            blocks.append(tuple((i, self.ops[op_perm(n)[slot]])
                                for i in pair))
        path, level = [], 0
        for layer in range(space.num_layers):
            moves = [j for j in (level - 1, level, level + 1)
                     if 0 <= j <= max_level(layer, space.num_levels)]
            rnd, k = divmod(self.visits[layer][level], len(moves))
            self.visits[layer][level] += 1
            level = moves[self._perm(2, layer, level, rnd)(len(moves))[k]]
            path.append(level)
        return Genotype(cell=CellGenotype(tuple(blocks)), path=tuple(path),
                        search_space=space)

    def state_dict(self):
        """``dict(type, seed, step, visits)``; ``visits[l][s]``: how often
        the path left level ``s`` of layer ``l - 1``."""
        return dict(super().state_dict(),
                    visits=[list(row) for row in self.visits])

    def _load_extra(self, state):
        visits = state.get('visits')
        shape = (self.space.num_layers, self.space.num_levels)
        if not (isinstance(visits, list) and len(visits) == shape[0] and all(
                isinstance(r, list) and len(r) == shape[1]
                and all(is_integer(v, 0) for v in r) for r in visits)):
            raise ValueError('sampler state: visits expected a '
                             f'{shape[0]}x{shape[1]} list of integers >= 0 '
                             'for this space')
        self.visits = [list(row) for row in visits]
