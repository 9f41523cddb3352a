"""Single-path samplers: uniform frequencies, exact FairNAS counts per
group, validity, and a resumed sampler drawing what an uninterrupted one
draws (from a JSON round trip of its plain-data state)."""
import json
from collections import Counter
from itertools import combinations

import pytest

from mmseg_autodeeplab.search_space import SearchSpace, max_level
from mmseg_autodeeplab.search_space.oneshot_sampling import (FairSampler,
                                                             UniformSampler)
from mmseg_autodeeplab.search_space.sampling import count_paths

SPACE = SearchSpace()  # L=12, B=5, 7 non-zero operators
OPS = [p for p in SPACE.primitives if p != 'none']


def _valid(genotype):
    for b, block in enumerate(genotype.cell.blocks):
        (i, _), (j, _) = block
        assert 0 <= i < j < b + 2  # two distinct inputs


def _plain(value):
    """Only ints, strings, lists and dicts (no numpy, no generator)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in (int, str)


def test_uniform_frequencies():
    n = 1400
    samples = _draw(UniformSampler(SPACE, seed=0), n)
    for g in samples:
        _valid(g)
    # each operator on each branch: binomial(n, 1/7), ±5 std (≈ 13)
    for b in range(SPACE.num_blocks):
        for k in range(2):
            counts = Counter(g.cell.blocks[b][k][1] for g in samples)
            assert set(counts) == set(OPS)
            assert all(abs(c - n / 7) < 66 for c in counts.values()), counts
    pairs = Counter(tuple(i for i, _ in g.cell.blocks[4]) for g in samples)
    assert len(pairs) == 15
    assert all(abs(c - n / 15) < 47 for c in pairs.values()), pairs
    # paths uniform, not a walk: P(layer 0 at level 0) ≈ 0.382 for L = 12
    # (a walk would give 1/2)
    counts = count_paths(SPACE.num_layers)
    p0 = counts[1][0] / (counts[1][0] + counts[1][1])
    assert 0.37 < p0 < 0.39
    got = sum(g.path[0] == 0 for g in samples) / n
    assert abs(got - p0) < 5 * (p0 * (1 - p0) / n) ** 0.5


def _draw(sampler, n):
    return [sampler.sample() for _ in range(n)]


def test_fair_groups_are_exact():
    n, groups = len(OPS), 30  # 30 groups: every pair cycle (1..15) ends
    sampler = FairSampler(SPACE, seed=5)
    samples = _draw(sampler, n * groups)
    edge_ops = Counter()
    for g in range(groups):
        group = samples[g * n:(g + 1) * n]
        for b in range(SPACE.num_blocks):
            pairs = {tuple(i for i, _ in s.cell.blocks[b]) for s in group}
            assert len(pairs) == 1  # a block keeps its pair in a group
            for k in range(2):
                assert sorted(s.cell.blocks[b][k][1] for s in group) == \
                    sorted(OPS)
            edge_ops.update((b, i, op) for s in group
                            for i, op in s.cell.blocks[b])
    for b in range(SPACE.num_blocks):
        all_pairs = list(combinations(range(b + 2), 2))
        per_group = [tuple(i for i, _ in samples[g * n].cell.blocks[b])
                     for g in range(groups)]
        for start in range(0, groups, len(all_pairs)):
            assert sorted(per_group[start:start + len(all_pairs)]) == \
                all_pairs
        # every edge of the block, every operator: the same count
        want = groups // len(all_pairs) * (b + 1)
        assert {edge_ops[b, i, op] for i in range(b + 2) for op in OPS} == \
            {want}
    for s in samples:
        _valid(s)


def test_fair_moves_cycle_per_node():
    sampler = FairSampler(SPACE, seed=2)
    samples = _draw(sampler, 600)
    taken = {}
    for s in samples:
        prev = 0
        for layer, level in enumerate(s.path):
            taken.setdefault((layer, prev), []).append(level)
            prev = level
    assert len(taken) == sum(min(layer, 3) + 1 for layer in range(12))
    for (layer, prev), levels in taken.items():
        moves = [j for j in (prev - 1, prev, prev + 1)
                 if 0 <= j <= max_level(layer)]
        assert len(moves) == (2 if prev in (0, 3) else 3)
        m = len(moves)
        for start in range(0, len(levels), m):
            chunk = levels[start:start + m]
            assert len(set(chunk)) == len(chunk)  # each move once a round
            if len(chunk) == m:
                assert sorted(chunk) == moves
    # the visit counters are the state: they match the walk
    state = sampler.state_dict()
    assert state['visits'][0] == [600, 0, 0, 0]
    assert sum(state['visits'][5]) == 600


@pytest.mark.parametrize('cls', [UniformSampler, FairSampler])
def test_resume_draws_the_same_sequence(cls):
    full = _draw(cls(SPACE, seed=3), 30)
    first = cls(SPACE, seed=3)
    head = _draw(first, 13)  # mid-group for the fair sampler (n = 7)
    state = json.loads(json.dumps(first.state_dict()))
    assert _plain(state) and state == first.state_dict()
    resumed = cls(SPACE, seed=99)
    resumed.load_state_dict(state)
    assert head + _draw(resumed, 17) == full
    assert _draw(cls(SPACE, seed=4), 30) != full


def test_bad_state_and_seed():
    with pytest.raises(ValueError, match='seed'):
        UniformSampler(SPACE, seed=-1)
    fair = FairSampler(SPACE)
    with pytest.raises(ValueError, match="type 'UniformSampler'"):
        fair.load_state_dict(UniformSampler(SPACE).state_dict())
    state = fair.state_dict()
    with pytest.raises(ValueError, match='step'):
        fair.load_state_dict(dict(state, step=-2))
    small = FairSampler(SearchSpace(num_layers=4, num_blocks=2))
    with pytest.raises(ValueError, match='visits expected a 4x4'):
        small.load_state_dict(state)
    assert small.step == 0
