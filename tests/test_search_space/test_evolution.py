"""SPOS's evolution on a planted score whose optimum is known: it finds the
optimum, random search of the same count does not; every scored candidate
keeps the cost band and is scored once; a killed run resumes to the same
result; bad arguments fail in one line."""
import json

import numpy as np
import pytest

from mmseg_autodeeplab.search_space import SearchSpace
from mmseg_autodeeplab.search_space.evolution import (evolution_search,
                                                      pareto_front,
                                                      random_search)
from mmseg_autodeeplab.search_space.sampling import sample_genotype

SPACE = SearchSpace()  # L=12, B=5, 7 non-zero operators
HIDDEN = sample_genotype(np.random.default_rng(2024), SPACE)
#: 5 input pairs + 10 operators + 12 levels
OPTIMUM = 27
WEIGHT = dict(max_pool_3x3=1, avg_pool_3x3=1, skip_connect=0, sep_conv_3x3=3,
              sep_conv_5x5=5, atrous_conv_3x3=4, atrous_conv_5x5=6)


def planted(genotype):
    """How many input pairs, operators and levels match HIDDEN's."""
    score = 0
    for mine, its in zip(genotype.cell.blocks, HIDDEN.cell.blocks):
        score += [i for i, _ in mine] == [i for i, _ in its]
        score += sum(a == b for (_, a), (_, b) in zip(mine, its))
    return score + sum(a == b for a, b in zip(genotype.path, HIDDEN.path))


def cost(genotype):
    return sum(WEIGHT[op] for block in genotype.cell.blocks
               for _, op in block) + sum(2 ** j for j in genotype.path)


TARGET = cost(HIDDEN)  # 62: the band is [55.8, 68.2]


class Killed(Exception):
    """Stands for a run killed while scoring."""


class Counting:
    """A score_fn that counts its calls and can fail after ``fail_after``."""

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = [], fail_after

    def __call__(self, genotype):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise Killed(f'killed after {self.fail_after} scores')
        self.calls.append(genotype)
        return planted(genotype)


def _in_band(result, lo=0.9, hi=1.1):
    return all(lo * TARGET <= c.cost <= hi * TARGET and c.cost == cost(
        c.genotype) for c in result.evaluated)


def test_evolution_finds_the_planted_optimum_and_random_does_not():
    assert planted(HIDDEN) == OPTIMUM
    score_fn, seen = Counting(), []
    result = evolution_search(SPACE, score_fn, cost, TARGET, max_epochs=40,
                              progress=lambda *a: seen.append(a))
    n = 50 * 40
    assert result.top_k[0].genotype == HIDDEN
    assert result.top_k[0].score == OPTIMUM
    assert [c.score for c in result.top_k] == sorted(
        (c.score for c in result.top_k), reverse=True)
    assert len(result.top_k) == 10
    # every candidate scored once, in the band; the band rejected draws
    assert len(result.evaluated) == len(set(score_fn.calls)) == n
    assert [c.genotype for c in result.evaluated] == score_fn.calls
    assert _in_band(result) and result.rejections['cost'] > 0
    assert [a[:2] for a in seen] == [(i + 1, n) for i in range(n)]
    assert [a[2:] for a in seen] == [tuple(c) for c in result.evaluated]
    base = random_search(SPACE, planted, cost, TARGET, num_samples=n)
    assert len({c.genotype for c in base.evaluated}) == n and _in_band(base)
    # uniform draws in the band: about 7 matches on average, 14-15 at best
    # (seeds 0-2); the evolution reaches 27 after 1618 scores (seed 0)
    assert base.top_k[0].score <= OPTIMUM - 8
    assert base.rejections['duplicate'] == 0


def test_pareto_front():
    result = random_search(SPACE, planted, cost, TARGET, num_samples=300,
                           constraints_range=(0.5, 1.5), seed=3)
    front = pareto_front(result.evaluated)
    assert front == result.pareto and len(front) >= 3
    assert [c.cost for c in front] == sorted(c.cost for c in front)
    assert [c.score for c in front] == sorted(c.score for c in front)
    for c in result.evaluated:  # the front beats or ties every candidate
        assert any(f.cost <= c.cost and f.score >= c.score for f in front)
        if c not in front:  # and nobody beats a front member
            continue
        assert not any(o.cost <= c.cost and o.score > c.score
                       or o.cost < c.cost and o.score >= c.score
                       for o in result.evaluated)


SMALL = dict(num_candidates=12, top_k=4, num_mutation=5, num_crossover=5,
             max_epochs=5, seed=7)


@pytest.fixture(scope='module')
def whole(tmp_path_factory):
    """An uninterrupted run and its final state file's text."""
    path = tmp_path_factory.mktemp('whole') / 'state.json'
    return evolution_search(SPACE, Counting(), cost, TARGET,
                            state_file=str(path), **SMALL), path.read_text()


@pytest.mark.parametrize('kill_after', [1, 29, 59])
def test_killed_evolution_resumes_to_the_same_result(tmp_path, whole,
                                                     kill_after):
    state = tmp_path / 'killed.json'
    with pytest.raises(Killed):
        evolution_search(SPACE, Counting(kill_after), cost, TARGET,
                         state_file=str(state), **SMALL)
    assert len(json.loads(state.read_text())['evaluated']) == kill_after
    score_fn, seen = Counting(), []
    resumed = evolution_search(SPACE, score_fn, cost, TARGET,
                               state_file=str(state),
                               progress=lambda *a: seen.append(a[0]),
                               **SMALL)
    assert len(score_fn.calls) == 60 - kill_after  # no candidate rescored
    assert seen == list(range(kill_after + 1, 61))
    assert resumed == whole[0]  # all scored, top-k, front, rejections
    assert state.read_text() == whole[1]
    if kill_after == 59:  # a finished run resumed scores nothing
        again = Counting()
        assert evolution_search(SPACE, again, cost, TARGET,
                                state_file=str(state), **SMALL) == whole[0]
        assert again.calls == []
    with pytest.raises(ValueError, match='seed is 7 there, 8 now'):
        evolution_search(SPACE, planted, cost, TARGET, state_file=str(state),
                         **dict(SMALL, seed=8))


def test_random_search_resumes(tmp_path):
    state = str(tmp_path / 'random.json')
    whole = random_search(SPACE, planted, cost, TARGET, num_samples=40)
    with pytest.raises(Killed):
        random_search(SPACE, Counting(25), cost, TARGET, num_samples=40,
                      state_file=state)
    score_fn = Counting()
    assert random_search(SPACE, score_fn, cost, TARGET, num_samples=40,
                         state_file=state) == whole
    assert len(score_fn.calls) == 15


@pytest.mark.parametrize('kwargs, match', [
    (dict(constraints_range=(1.1, 0.9)), 'constraints_range'),
    (dict(constraints_range=(0, 1.1)), 'constraints_range'),
    (dict(constraints_range=0.9), 'constraints_range'),
    (dict(target=-1.0), 'target'),
    (dict(num_candidates=0), 'num_candidates: expected an integer >= 1'),
    (dict(top_k=60), r'top_k \(60\) .* num_candidates \(50\)'),
    (dict(num_mutation=30), r'num_crossover \(55\) must be at most'),
    (dict(mutate_prob=1.5), 'mutate_prob 1.5'),
    (dict(top_k=1), 'top_k >= 2'),
    (dict(seed=-1), 'seed: expected an integer >= 0'),
    (dict(max_epochs=2.0), 'max_epochs'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evolution_search(SPACE, planted, cost, **dict(dict(target=TARGET),
                                                      **kwargs))


def test_band_no_genotype_reaches():
    with pytest.raises(RuntimeError, match=r'0 of 50 new genotypes with '
                       r'cost in \[0.9, 1.1\]'):
        evolution_search(SPACE, planted, cost, 1.0, max_tries=3)


def test_non_finite_score():
    with pytest.raises(ValueError, match='score_fn returned nan for '
                       'candidate 1'):
        random_search(SPACE, lambda g: float('nan'), cost, TARGET,
                      num_samples=2)
