"""Tests of β normalisation and of the cell / path decoders (spec 2 and 4).

Every expected genotype and path below is computed by hand (or, for the
cross-check, by brute force over all paths), never by the code under test.
"""
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import mmseg_autodeeplab  # noqa: E402,F401
from mmseg_autodeeplab import decode_cell, decode_path  # noqa: E402
from mmseg_autodeeplab.search_space import (PRIMITIVES, CellGenotype,  # noqa
                                            decode_genotype, normalize_betas,
                                            num_edges)
from mmseg_autodeeplab.search_space.decode import (  # noqa: E402
    debias_path_probs)

COL = {name: k for k, name in enumerate(PRIMITIVES)}
B = 5
E = 2 + 3 + 4 + 5 + 6  # block i (0-based) has i + 2 candidate inputs
pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


def path_log_score(probs, path, path_prior='none'):
    """Log score of ``path`` (a level per layer) under normalised β
    ``probs``, summed move by move: ``sum log p`` (prior ``'none'``) or
    ``sum log(n_out * p)`` (``'uniform'``)."""
    if path_prior == 'uniform':
        probs = debias_path_probs(probs)
    src, total = 0, 0.0
    for layer, dst in enumerate(path):
        p = float(probs[layer, src, dst - src + 1])
        total += math.log(p) if p > 0 else -math.inf
        src = dst
    return total


def _edge(block, inp):
    """Row of α for input ``inp`` of block ``block`` (both 0-based)."""
    return sum(b + 2 for b in range(block)) + inp


def _alphas(spec=(), base=0.0):
    """α logits: ``spec`` is ``[(block, input, op, logit), ...]``."""
    a = torch.full((E, len(PRIMITIVES)), base, dtype=torch.float64)
    for block, inp, op, logit in spec:
        a[_edge(block, inp), COL[op]] = logit
    return a


# -- edge count --------------------------------------------------------------

def test_num_edges():
    assert num_edges(5) == E == 20
    assert num_edges(4) == 14  # the DARTS-size cell
    assert num_edges(1) == 2


# -- normalize_betas ---------------------------------------------------------

def _raw_betas(layers=6, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(layers, 4, 3, generator=g, dtype=torch.float64)


def test_normalize_betas_outgoing_sums_are_one():
    p = normalize_betas(_raw_betas())
    assert p.shape == (6, 4, 3)
    torch.testing.assert_close(p.sum(-1), torch.ones(6, 4, dtype=p.dtype))
    assert (p >= 0).all()


def test_normalize_betas_impossible_moves_are_exactly_zero():
    raw = _raw_betas()
    raw[:, 0, 0] = 1e4  # finer than /4: does not exist
    raw[:, 3, 2] = 1e4  # coarser than /32: does not exist
    p = normalize_betas(raw)
    assert (p[:, 0, 0] == 0).all()
    assert (p[:, 3, 2] == 0).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(6, 4, dtype=p.dtype))


def test_normalize_betas_is_a_plain_softmax_over_valid_moves():
    raw = _raw_betas(seed=3)
    p = normalize_betas(raw)
    # middle levels: 3-way softmax
    torch.testing.assert_close(p[:, 1:3], torch.softmax(raw[:, 1:3], -1))
    # level 0: 2-way softmax over (stay, coarser); no 2/3 scaling
    torch.testing.assert_close(p[:, 0, 1:], torch.softmax(raw[:, 0, 1:], -1))
    # level 3: 2-way softmax over (finer, stay)
    torch.testing.assert_close(p[:, 3, :2], torch.softmax(raw[:, 3, :2], -1))


def test_normalize_betas_hand_values():
    raw = torch.zeros(1, 4, 3)
    raw[0, 1] = torch.tensor([0.0, math.log(2.0), math.log(5.0)])
    p = normalize_betas(raw)
    torch.testing.assert_close(p[0, 0], torch.tensor([0.0, 0.5, 0.5]))
    torch.testing.assert_close(p[0, 1], torch.tensor([0.125, 0.25, 0.625]))
    torch.testing.assert_close(p[0, 2], torch.full((3, ), 1 / 3))
    torch.testing.assert_close(p[0, 3], torch.tensor([0.5, 0.5, 0.0]))


def test_normalize_betas_backward_is_finite_and_inplace_free():
    raw = _raw_betas().float().requires_grad_(True)
    before = raw.detach().clone()
    p = normalize_betas(raw)
    (p * torch.arange(p.numel()).view_as(p)).sum().backward()
    assert torch.isfinite(raw.grad).all()
    assert (raw.grad[:, 0, 0] == 0).all() and (raw.grad[:, 3, 2] == 0).all()
    assert torch.equal(raw.detach(), before)


# -- decode_cell -------------------------------------------------------------

def _check_cell_types(cell):
    assert isinstance(cell, CellGenotype)
    assert isinstance(cell.blocks, tuple) and len(cell.blocks) == 5
    for block in cell.blocks:
        assert isinstance(block, tuple) and len(block) == 2
        for pair in block:
            assert isinstance(pair, tuple) and len(pair) == 2
            assert type(pair[0]) is int and type(pair[1]) is str


def test_decode_cell_uniform_alphas_ties_go_to_lower_indices():
    cell = decode_cell(torch.zeros(E, 8))
    _check_cell_types(cell)
    first_real_op = PRIMITIVES[1]  # column 0 is 'none'
    assert cell.blocks == tuple(
        ((0, first_real_op), (1, first_real_op)) for _ in range(5))


def test_decode_cell_recovers_a_planted_cell(paper_cell):
    g = torch.Generator().manual_seed(0)
    a = 0.1 * torch.randn(E, 8, generator=g)
    for b, block in enumerate(paper_cell):
        for inp, op in block:
            a[_edge(b, inp), COL[op]] = 3.0
    cell = decode_cell(a)
    _check_cell_types(cell)
    assert cell.blocks == paper_cell


def test_decode_cell_never_picks_none_and_strength_ignores_none():
    spec = [
        # block 1 (inputs H(l-2), H(l-1), H1): edge 0 is dominated by 'none'
        # (softmax weight ~1.0) but its best real op has weight ~4.5e-5;
        # edges 1 and 2 are the strongest by real-op weight.
        (1, 0, 'none', 10.0),
        (1, 1, 'sep_conv_3x3', 1.0),    # e/(e+7) = 0.280
        (1, 2, 'skip_connect', 0.5),    # e^.5/(e^.5+7) = 0.191
        # block 2: on edge 3 'none' is the largest weight, but the edge is
        # still the strongest by its real op sep_conv_5x5:
        # e^2/(e^3+e^2+6) = 0.221 > 1/8 for the uniform edges
        (2, 3, 'none', 3.0),
        (2, 3, 'sep_conv_5x5', 2.0),
        (2, 1, 'avg_pool_3x3', 0.1),    # e^.1/(e^.1+7) = 0.136
    ]
    cell = decode_cell(_alphas(spec))
    _check_cell_types(cell)
    assert cell.blocks[1] == ((1, 'sep_conv_3x3'), (2, 'skip_connect'))
    assert cell.blocks[2] == ((1, 'avg_pool_3x3'), (3, 'sep_conv_5x5'))
    for block in cell.blocks:
        for _, op in block:
            assert op != 'none'


def test_decode_cell_strength_uses_softmax_over_all_ops():
    # DARTS convention: weights are softmax over ALL 8 ops, the strength is
    # the max over the non-zero ones. Edge 0 of block 2: none=5, sep3=3
    #   -> e^3/(e^5+e^3+6) = 0.115 (but 0.770 if 'none' were dropped before
    #      the softmax); edge 2: atrous3=1 -> e/(e+7) = 0.280;
    #   edge 3: atrous5=0.8 -> e^.8/(e^.8+7) = 0.241.
    spec = [(2, 0, 'none', 5.0), (2, 0, 'sep_conv_3x3', 3.0),
            (2, 2, 'atrous_conv_3x3', 1.0), (2, 3, 'atrous_conv_5x5', 0.8)]
    cell = decode_cell(_alphas(spec))
    assert cell.blocks[2] == ((2, 'atrous_conv_3x3'), (3, 'atrous_conv_5x5'))


def test_decode_cell_pairs_are_ordered_by_input_index():
    # block 4: the strongest edge is input 5 (H4), the second input 0
    spec = [(4, 5, 'max_pool_3x3', 4.0), (4, 0, 'sep_conv_5x5', 2.0)]
    cell = decode_cell(_alphas(spec))
    assert cell.blocks[4] == ((0, 'sep_conv_5x5'), (5, 'max_pool_3x3'))


def test_decode_cell_ties_between_edges_and_ops_go_to_lower_index():
    spec = [
        # block 3 (inputs 0..4): inputs 1, 3, 4 tie; 0 and 2 are weaker
        (3, 1, 'skip_connect', 2.0), (3, 3, 'skip_connect', 2.0),
        (3, 4, 'skip_connect', 2.0),
        (3, 0, 'none', 2.0), (3, 2, 'none', 2.0),
        # block 0: two ops tie on each edge -> the lower column wins
        (0, 0, 'sep_conv_5x5', 1.5), (0, 0, 'sep_conv_3x3', 1.5),
        (0, 1, 'atrous_conv_5x5', 1.5), (0, 1, 'atrous_conv_3x3', 1.5),
    ]
    cell = decode_cell(_alphas(spec))
    assert cell.blocks[3] == ((1, 'skip_connect'), (3, 'skip_connect'))
    assert cell.blocks[0] == ((0, 'sep_conv_3x3'), (1, 'atrous_conv_3x3'))


def test_decode_cell_uses_the_given_primitive_order():
    prims = tuple(reversed(PRIMITIVES))  # 'none' is the LAST column here
    a = torch.zeros(E, 8)
    a[:, 7] = 6.0  # 'none' dominates every edge
    a[:, 6] = 1.0  # max_pool_3x3 in this order
    cell = decode_cell(a, primitives=prims)
    assert all(block == ((0, 'max_pool_3x3'), (1, 'max_pool_3x3'))
               for block in cell.blocks)


def test_decode_cell_accepts_numpy_and_parameters():
    a = _alphas([(b, 1, 'sep_conv_5x5', 2.0) for b in range(5)] +
                [(b, 0, 'atrous_conv_3x3', 1.0) for b in range(5)])
    expect = tuple(((0, 'atrous_conv_3x3'), (1, 'sep_conv_5x5'))
                   for _ in range(5))
    assert decode_cell(a.numpy()).blocks == expect
    assert decode_cell(a.numpy().astype(np.float32)).blocks == expect
    assert decode_cell(torch.nn.Parameter(a.float())).blocks == expect


def test_decode_cell_rejects_bad_shapes():
    with pytest.raises(ValueError):
        decode_cell(torch.zeros(19, 8))  # not 2+3+...+(B+1)
    with pytest.raises(ValueError):
        decode_cell(torch.zeros(E, 7))  # 7 columns, 8 primitives
    with pytest.raises(ValueError):
        decode_cell(torch.zeros(E))


def test_decode_cell_4_blocks():
    cell = decode_cell(torch.zeros(14, 8))
    assert len(cell.blocks) == 4


# -- decode_path -------------------------------------------------------------

def _probs(layers, moves, fill=0.0):
    """betas[l, s, d] from ``{(l, s): (finer, stay, coarser)}``."""
    b = np.full((layers, 4, 3), fill)
    for (layer, src), row in moves.items():
        b[layer, src] = row
    return b


# L = 3, hand-computed:
#   layer 0 (from the stem, level 0): stay .6, up .4
#   layer 1: from 0: stay .55, up .45; from 1: down .05 stay .05 up .9
#   layer 2: from 0: .5/.5; from 1: .3 .4 .3; from 2: .2 .7 .1
# All 12 path products:
#   000 .165  001 .165  010 .081  011 .108  012 .081
#   100 .010  101 .010  110 .006  111 .008  112 .006
#   121 .072  122 .252  123 .036
# Greedy (best move at each step) walks 0, 0, 0 (or 0, 0, 1); the maximum
# product path is 1, 2, 2.
HAND = _probs(3, {
    (0, 0): (0.0, 0.6, 0.4),
    (1, 0): (0.0, 0.55, 0.45),
    (1, 1): (0.05, 0.05, 0.9),
    (2, 0): (0.0, 0.5, 0.5),
    (2, 1): (0.3, 0.4, 0.3),
    (2, 2): (0.2, 0.7, 0.1),
})


def test_decode_path_hand_case_viterbi_beats_greedy():
    assert decode_path(HAND) == [1, 2, 2]


@pytest.mark.parametrize('end, path', [(0, [0, 0, 0]), (1, [0, 0, 1]),
                                       (2, [1, 2, 2]), (3, [1, 2, 3])])
def test_decode_path_end_level_forcing(end, path):
    assert decode_path(HAND, end_level=end) == path


def test_decode_path_ignores_impossible_and_unreachable_entries():
    b = HAND.copy()
    b[:, 0, 0] = 50.0   # finer than level 0: impossible
    b[:, 3, 2] = 50.0   # coarser than level 3: impossible
    b[0, 1:] = 50.0     # layer 0 moves from levels 1-3: the stem is level 0
    b[1, 2:] = 50.0     # layer 1 moves from levels 2, 3: unreachable
    b[2, 3] = 50.0      # layer 2 moves from level 3: unreachable
    assert decode_path(b) == [1, 2, 2]
    for end, path in [(0, [0, 0, 0]), (3, [1, 2, 3])]:
        assert decode_path(b, end_level=end) == path


def test_decode_path_final_tie_prefers_lower_level():
    b = _probs(1, {(0, 0): (0.0, 0.5, 0.5)})
    assert decode_path(b) == [0]
    b = _probs(1, {(0, 0): (0.0, 0.4, 0.6)})
    assert decode_path(b) == [1]


def test_decode_path_rejects_unreachable_end_level():
    b = _probs(2, {(0, 0): (0, .5, .5), (1, 0): (0, .5, .5),
                   (1, 1): (.3, .3, .4)})
    assert decode_path(b, end_level=2) == [1, 2]
    with pytest.raises(ValueError):
        decode_path(b, end_level=3)  # layer 2 reaches at most level 2
    with pytest.raises(ValueError):
        decode_path(b, end_level=-1)


def test_decode_path_a_long_detour_through_coarse_levels():
    # L = 4: going up is individually cheap but staying at 0 is certain;
    # the only high-product path dives to level 3 and stays there.
    b = _probs(4, {
        (0, 0): (0, 0.5, 0.5),
        (1, 0): (0, 0.9, 0.1), (1, 1): (0.1, 0.1, 0.8),
        (2, 0): (0, 0.9, 0.1), (2, 1): (0.1, 0.8, 0.1),
        (2, 2): (0.05, 0.05, 0.9),
        (3, 0): (0, 0.9, 0.1), (3, 1): (0.1, 0.8, 0.1),
        (3, 2): (0.1, 0.8, 0.1), (3, 3): (0.0, 1.0, 0.0),
    })
    # 0000: .5*.9*.9*.9 = .3645 ; 1233: .5*.8*.9*1.0 = .36
    assert decode_path(b) == [0, 0, 0, 0]
    b[3, 3] = (0.0, 1.0, 0.0)
    b[1, 1] = (0.05, 0.05, 0.9)  # 1233: .5*.9*.9*1 = .405
    assert decode_path(b) == [1, 2, 3, 3]


def _all_paths(num_layers, num_levels=4):
    for path in itertools.product(range(num_levels), repeat=num_layers):
        prev, ok = 0, True
        for level in path:
            if abs(level - prev) > 1:
                ok = False
                break
            prev = level
        if ok:
            yield path


def _product(probs, path):
    prev, p = 0, 1.0
    for layer, level in enumerate(path):
        p *= float(probs[layer, prev, level - prev + 1])
        prev = level
    return p


@pytest.mark.parametrize('seed', range(8))
def test_decode_path_brute_force_cross_check(seed):
    probs = normalize_betas(_raw_betas(layers=5, seed=seed, scale=2.0))
    paths = list(_all_paths(5))
    # every path starts at level 0 or 1, and layer l reaches level <= l + 1
    assert all(p[0] in (0, 1) for p in paths)
    assert all(lv <= min(i + 1, 3) for p in paths for i, lv in enumerate(p))
    scores = {p: _product(probs, p) for p in paths}
    best = max(scores.values())
    got = decode_path(probs)
    assert isinstance(got, list) and len(got) == 5
    assert all(type(v) is int for v in got)
    assert tuple(got) in scores, f'invalid path {got}'
    assert scores[tuple(got)] == pytest.approx(best, rel=1e-9)
    # random probabilities: the optimum is unique
    assert tuple(got) == max(scores, key=scores.get)
    # forced ends: the best path among those ending there
    for end in range(4):
        cands = {p: s for p, s in scores.items() if p[-1] == end}
        forced = decode_path(probs, end_level=end)
        assert forced[-1] == end
        assert scores[tuple(forced)] == pytest.approx(
            max(cands.values()), rel=1e-9)


def test_decode_path_accepts_numpy_tensors_and_lists():
    expect = [1, 2, 2]
    assert decode_path(HAND) == expect
    assert decode_path(HAND.astype(np.float32)) == expect
    assert decode_path(torch.from_numpy(HAND)) == expect
    assert decode_path(torch.from_numpy(HAND).float()) == expect
    assert decode_path(torch.nn.Parameter(
        torch.from_numpy(HAND).float())) == expect
    assert decode_path(HAND.tolist()) == expect


def test_decode_path_rejects_bad_shapes():
    with pytest.raises(ValueError):
        decode_path(np.zeros((3, 4)))
    with pytest.raises(ValueError):
        decode_path(np.full((3, 4, 2), 0.5))


def test_decode_path_is_linear_time_not_exhaustive():
    # 12 layers would have ~10^5 paths, 60 layers ~10^28: only DP finishes
    probs = normalize_betas(_raw_betas(layers=60, seed=5))
    path = decode_path(probs)
    assert len(path) == 60 and path[0] in (0, 1)
    assert all(abs(a - b) <= 1 for a, b in zip(path, path[1:]))


# -- decode_genotype ---------------------------------------------------------

def test_decode_genotype_normalises_raw_betas():
    raw = _raw_betas(layers=5, seed=11)
    a = _alphas([(b, 1, 'sep_conv_5x5', 2.0) for b in range(5)])
    g = decode_genotype(a, raw)
    assert list(g.path) == decode_path(normalize_betas(raw))
    assert g.cell == decode_cell(a)
    assert g.search_space.num_layers == 5
    g2 = decode_genotype(a, normalize_betas(raw), normalized=True)
    assert g2 == g


# -- the boundary bias and the unbiased (uniform-prior) decode ----------------

def _n_out(level):
    return 2 if level in (0, 3) else 3


def _ratio_score(probs, path):
    """sum log(n_out * p), computed independently of the code under test."""
    prev, s = 0, 0.0
    for layer, level in enumerate(path):
        s += math.log(_n_out(prev) * float(probs[layer, prev,
                                                 level - prev + 1]))
        prev = level
    return s


def test_uniform_betas_biased_decode_is_all_stride_4():
    # the bias in numbers: every step from /4 is worth log 1/2, every other
    # step at most log 1/3, so uniform β decode to the all-/4 path
    probs = normalize_betas(torch.zeros(6, 4, 3, dtype=torch.float64))
    assert decode_path(probs) == [0] * 6
    assert path_log_score(probs, [0] * 6) == pytest.approx(6 * math.log(.5))
    assert path_log_score(probs, [1, 1, 1, 1, 1, 1]) == pytest.approx(
        math.log(.5) + 5 * math.log(1 / 3))
    # the unbiased score of every path under uniform β is exactly 0
    for path in _all_paths(6):
        assert path_log_score(probs, path, 'uniform') == pytest.approx(0.0)


@pytest.mark.parametrize('seed', range(6))
def test_unbiased_decode_brute_force_cross_check(seed):
    probs = normalize_betas(_raw_betas(layers=5, seed=seed, scale=2.0))
    scores = {p: _ratio_score(probs, p) for p in _all_paths(5)}
    raw = _raw_betas(layers=5, seed=seed, scale=2.0)
    got = decode_genotype(_alphas(), raw, path_prior='uniform').path
    assert got == max(scores, key=scores.get)
    assert tuple(decode_path(debias_path_probs(probs))) == got
    assert path_log_score(probs, got, 'uniform') == pytest.approx(
        scores[got])


def test_unbiased_decode_removes_the_pull_to_the_boundaries():
    # near-uniform random β (a short search): the biased decode almost
    # always stays at /4; the unbiased one spreads over the levels
    biased, unbiased = [], []
    for seed in range(40):
        raw = _raw_betas(layers=8, seed=100 + seed, scale=0.05)
        probs = normalize_betas(raw)
        biased += decode_path(probs)
        unbiased += decode_path(debias_path_probs(probs))
    boundary = lambda path: np.isin(path, (0, 3)).mean()  # noqa: E731
    assert boundary(biased) > 0.9
    assert boundary(unbiased) < 0.7
    assert len(set(unbiased)) == 4


def test_hand_case_where_the_two_decodes_differ():
    # L = 2. From the stem (/4): stay .55, up .45 (2-way). Layer 1 from /4:
    # stay .5 up .5; from /8: .1 .45 .45.
    # biased:   00: .275  01: .275  10: .045  11: .2025  12: .2025 -> [0, 0]
    # unbiased: 00: 1.1   01: 1.1   10: .27   11: 1.215   12: 1.215 -> [1, 1]
    b = _probs(2, {(0, 0): (0, .55, .45), (1, 0): (0, .5, .5),
                   (1, 1): (.1, .45, .45)})
    assert decode_path(b) == [0, 0]
    assert decode_path(debias_path_probs(torch.as_tensor(b))) == [1, 1]
    g = decode_genotype(_alphas(), torch.as_tensor(b), normalized=True,
                        path_prior='uniform')
    assert list(g.path) == [1, 1]


def test_path_prior_is_validated():
    with pytest.raises(ValueError, match='path_prior'):
        decode_genotype(_alphas(), torch.zeros(3, 4, 3), path_prior='flat')
