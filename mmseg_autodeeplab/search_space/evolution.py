"""Evolutionary search under a cost band (SPOS's recipe), and its baseline.

Recipe (SPOS; mmrazor's ``EvolutionSearchLoop`` names): generation 0 is
``num_candidates`` uniform genotypes; each is scored, the best ``top_k`` of
all scored so far kept, and the next generation is ``num_mutation`` mutants
of top-k parents (each block's input pair, each branch's operator, each
layer's level redrawn with probability ``mutate_prob``), ``num_crossover``
children of two (each block from either, the path spliced where the levels
meet), then uniform draws up to ``num_candidates``. A draw outside the cost
band ``constraints_range * target`` or drawn before is redrawn and counted
in ``rejections``: every scored candidate is in the band and new.

No library: optuna 5.0.0's NSGAIISampler keeps its generator out of the
storage (a seeded SQLite study resumed after 20 of 40 trials diverged at
trial 20), its ``constraints_func`` ranks infeasible trials after scoring
them, and its per-parameter operators break paths; pymoo resumes from a
pickled algorithm (loading runs code).

Resume: a run is a function of its settings and scores, so the state is
the scored list (JSON, rewritten atomically after each score); a resumed
run replays the recipe taking known scores, and ends as an uninterrupted
run would.
"""
import json
import math
import os
from collections import namedtuple
from functools import partial

import numpy as np

from ..utils.atomic import atomic_write_text
from ..utils.checks import is_integer
from .decode import max_level
from .genotype import CellGenotype, Genotype
from .sampling import sample_cell, sample_genotype

FORMAT = 'mmseg_autodeeplab.evolution_state'
_MINIMUM = dict(num_candidates=1, top_k=1, num_mutation=0, num_crossover=0,
                max_epochs=1, num_samples=1, seed=0, max_tries=1)
#: one scored genotype
Candidate = namedtuple('Candidate', 'genotype score cost')
#: ``top_k``, ``pareto`` (by cost, each better than all cheaper),
#: ``evaluated`` (scoring order): lists of Candidate; ``rejections``: dict
SearchResult = namedtuple('SearchResult', 'top_k pareto evaluated rejections')


def _mutate(rng, parent, prob):
    space = parent.search_space
    blocks = []
    for old, fresh in zip(parent.cell.blocks, sample_cell(
            rng, space.num_blocks, space.primitives)):
        inputs = [i for i, _ in (fresh if rng.random() < prob else old)]
        blocks.append(tuple((i, f if rng.random() < prob else o) for i, (
            _, o), (_, f) in zip(inputs, old, fresh)))
    path = list(parent.path)
    for layer in range(space.num_layers):
        if rng.random() < prob:
            prev = path[layer - 1] if layer else 0
            nxt = path[layer + 1:layer + 2]
            levels = [j for j in (prev - 1, prev, prev + 1)
                      if 0 <= j <= max_level(layer, space.num_levels)
                      and all(abs(k - j) <= 1 for k in nxt)]
            path[layer] = levels[rng.integers(len(levels))]
    return Genotype(CellGenotype(tuple(blocks)), tuple(path), space)


def _crossover(rng, a, b):
    blocks = [x if rng.random() < 0.5 else y
              for x, y in zip(a.cell.blocks, b.cell.blocks)]
    n = len(a.path)
    cuts = [k for k in range(n + 1)
            if k in (0, n) or abs(b.path[k] - a.path[k - 1]) <= 1]
    k = cuts[rng.integers(len(cuts))]
    return Genotype(CellGenotype(tuple(blocks)), a.path[:k] + b.path[k:],
                    a.search_space)


def pareto_front(candidates):
    """Candidates no other beats on both score (higher) and cost (lower),
    by increasing cost."""
    front = []
    for c in sorted(candidates, key=lambda c: (c.cost, -c.score)):
        if not front or c.score > front[-1].score:
            front.append(c)
    return front


class _Run:
    """Draws, the band, the score cache, progress and the state file."""

    def __init__(self, space, fns, target, band, settings, state_file,
                 progress, max_tries, total):
        for key, value in dict(settings, max_tries=max_tries).items():
            if key in _MINIMUM and not is_integer(value, _MINIMUM[key]):
                raise ValueError(f'{key}: expected an integer >= '
                                 f'{_MINIMUM[key]}, got {value!r}')
        lo, hi = band if isinstance(band, (list, tuple)) and len(
            band) == 2 else (0, 0)
        if not (all(isinstance(v, (int, float)) for v in (lo, hi, target))
                and 0 < lo <= hi < math.inf and 0 < target < math.inf):
            raise ValueError(f'constraints_range, target: expected (lo, hi) '
                             f'with 0 < lo <= hi, fractions of a cost > 0; '
                             f'got {band!r}, {target!r}')
        self.score_fn, self.cost_fn = fns
        self.band, self.total, self.progress = (lo * target, hi * target), \
            total, progress
        self.max_tries, self.state_file = max_tries, state_file
        self.settings = dict(settings, target=target, constraints_range=[
            lo, hi], search_space=space.to_dict())
        self.evaluated, self.known, self.seen, self.costs = {}, {}, set(), {}
        self.rejections = dict(cost=0, duplicate=0)
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding='utf-8') as f:
                state = json.load(f)
            if not (isinstance(state, dict) and state.get('format') == FORMAT):
                raise ValueError(f'{state_file}: not an evolution state')
            for key, now in self.settings.items():
                if state['settings'].get(key) != now:
                    raise ValueError(
                        f'{state_file}: {key} is '
                        f'{state["settings"].get(key)!r:.80} there, '
                        f'{now!r:.80} now; resume with the same settings '
                        'or another state file')
            for cell, levels, score, cost in state['evaluated']:
                self.known[Genotype(CellGenotype(cell), levels, space)] = (
                    float(score), float(cost))

    def accept(self, genotype):
        """Whether ``genotype`` is new and in the band (counts rejections)."""
        if genotype in self.seen:
            self.rejections['duplicate'] += 1
            return False
        if genotype not in self.costs:
            self.costs[genotype] = float(self.cost_fn(genotype))
        if not self.band[0] <= self.costs[genotype] <= self.band[1]:
            self.rejections['cost'] += 1
            return False
        self.seen.add(genotype)
        return True

    def draw(self, rng, num, make, tries=None):
        """Up to ``num`` new in-band genotypes from ``make(rng)`` in at most
        ``tries`` draws (mmrazor's ``10 * num`` for children); ``None``:
        exactly ``num`` in ``num * max_tries`` draws, or RuntimeError."""
        found = []
        for _ in range(tries or num * self.max_tries):
            if len(found) == num:
                break
            genotype = make(rng)
            if self.accept(genotype):
                found.append(genotype)
        if tries is None and len(found) < num:
            raise RuntimeError(
                f'{len(found)} of {num} new genotypes with cost in '
                f'[{self.band[0]:.6g}, {self.band[1]:.6g}] in '
                f'{num * self.max_tries} uniform draws; widen '
                'constraints_range or move target')
        return found

    def score(self, genotype):
        """Score ``genotype`` (known scores are taken, not recomputed)."""
        new = genotype not in self.known
        if new:
            score = float(self.score_fn(genotype))
            if not math.isfinite(score):
                raise ValueError(f'score_fn returned {score} for candidate '
                                 f'{len(self.evaluated) + 1}; expected a '
                                 'finite float')
            self.known[genotype] = (score, self.costs[genotype])
        self.evaluated[genotype] = Candidate(genotype, *self.known[genotype])
        if new and self.state_file:
            rows = [[g.cell.blocks, g.path, s, c]
                    for g, (s, c) in self.known.items()]
            atomic_write_text(self.state_file, json.dumps(dict(
                format=FORMAT, settings=self.settings, evaluated=rows)) + '\n')
        if new and self.progress:
            self.progress(len(self.evaluated), self.total,
                          *self.evaluated[genotype])

    def result(self, top_k):
        scored = list(self.evaluated.values())
        best = sorted(scored, key=lambda c: (-c.score, c.cost))[:top_k]
        return SearchResult(best, pareto_front(scored), scored,
                            dict(self.rejections))


def evolution_search(space, score_fn, cost_fn, target,
                     constraints_range=(0.9, 1.1), num_candidates=50,
                     top_k=10, num_mutation=25, num_crossover=25,
                     mutate_prob=0.1, max_epochs=20, seed=0, state_file=None,
                     progress=None, max_tries=1000):
    """SPOS's evolution (module docstring) over genotypes of ``space``.

    Args:
        space (SearchSpace): the space searched.
        score_fn, cost_fn (callable): ``genotype -> float``; a higher score
            is better; cost e.g. multiply-adds (``arch_cost``).
        target (float): the cost aimed at; ``constraints_range`` (lo, hi)
            is the band as fractions of it.
        num_candidates, top_k, num_mutation, num_crossover, mutate_prob,
            max_epochs: the recipe's sizes (``max_epochs`` generations).
        seed (int): same seed and scores, same run.
        state_file (str, optional): JSON state; an existing one is resumed.
        progress (callable, optional): ``(index, total, genotype, score,
            cost)`` after each new score.
        max_tries (int): uniform draws per candidate before RuntimeError.

    Returns:
        SearchResult: ``top_k`` best, Pareto front, all scored, rejections.
    """
    settings = dict(method='evolution', num_candidates=num_candidates,
                    top_k=top_k, num_mutation=num_mutation, seed=seed,
                    num_crossover=num_crossover, mutate_prob=mutate_prob,
                    max_epochs=max_epochs)
    run = _Run(space, (score_fn, cost_fn), target, constraints_range,
               settings, state_file, progress, max_tries,
               num_candidates * max_epochs)
    if top_k > num_candidates or num_mutation + num_crossover > num_candidates:
        raise ValueError(f'top_k ({top_k}) and num_mutation + num_crossover '
                         f'({num_mutation + num_crossover}) must be at most '
                         f'num_candidates ({num_candidates})')
    if num_crossover and top_k < 2 or not (isinstance(mutate_prob, (
            int, float)) and 0 <= mutate_prob <= 1):
        raise ValueError(f'mutate_prob {mutate_prob!r}, top_k {top_k}: '
                         'expected a probability, and top_k >= 2 (two '
                         'parents) when num_crossover > 0')
    rng = np.random.default_rng(seed)
    for epoch in range(max_epochs):
        top = [c.genotype for c in run.result(top_k).top_k]
        population = run.draw(rng, num_mutation * bool(epoch), lambda r: (
            _mutate(r, top[r.integers(len(top))], mutate_prob)),
            10 * num_mutation)
        population += run.draw(rng, num_crossover * bool(epoch), lambda r: (
            _crossover(r, *(top[i] for i in r.choice(len(top), 2, False)))),
            10 * num_crossover)
        population += run.draw(rng, num_candidates - len(population),
                               partial(sample_genotype, space=space))
        for genotype in population:
            run.score(genotype)
    return run.result(top_k)


def random_search(space, score_fn, cost_fn, target, num_samples,
                  constraints_range=(0.9, 1.1), top_k=10, seed=0,
                  state_file=None, progress=None, max_tries=1000):
    """The baseline: ``num_samples`` distinct uniform genotypes in the same
    band, scored; arguments and result as :func:`evolution_search`."""
    run = _Run(space, (score_fn, cost_fn), target, constraints_range,
               dict(method='random', num_samples=num_samples, top_k=top_k,
                    seed=seed), state_file, progress, max_tries, num_samples)
    for genotype in run.draw(np.random.default_rng(seed), num_samples,
                             partial(sample_genotype, space=space)):
        run.score(genotype)
    return run.result(top_k)
