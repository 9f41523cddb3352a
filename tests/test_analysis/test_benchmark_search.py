"""tools/analysis/benchmark_search.py on a tiny supernet: fields, ratios,
errors, and that the steps it times are the search loop's."""
import json

import pytest

from benchmark_search import (main, parse_args, project_search,
                              projection_lines, search_schedule)


@pytest.mark.slow
def test_tiny_benchmark_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / 'bench'
    rc = main(['--crop', '33x33', '--filter-multiplier', '2', '--num-layers',
               '3', '--repeat', '1', '--warmup', '0', '--variants',
               'per-edge', 'fused', 'fused+amp', '--out', str(out),
               '--device', 'cpu'])
    assert rc == 0
    data = json.loads((out / 'benchmark_search.json').read_text())
    results = {r['variant']: r for r in data['results']}
    assert set(results) == {'per-edge', 'fused', 'fused+amp'}
    assert results['fused+amp']['amp_dtype'] == 'bfloat16'  # CPU's
    for name in ('per-edge', 'fused', 'fused+amp'):
        r = results[name]
        assert r['device'] == 'cpu'
        # positive times (no ordering: timings are noisy on a shared machine)
        assert r['search_iter_s'] > 0 and r['weight_step_s'] > 0
        assert len(r['search_iter_spread_s']) == 2
        assert r['peak_memory_bytes'] > 10 * 2**20
        assert r['matmul_flops_per_s'] > 1e8
        assert 0 < r['flop_rate'] < 1
    # one network, counted once; each FLOP rate uses its own step time
    fused, edge = results['fused'], results['per-edge']
    assert fused['macs_fwd'] == edge['macs_fwd'] > 1e6
    for r in (fused, edge):
        assert r['flop_rate'] == pytest.approx(
            6 * r['macs_fwd'] / r['weight_step_s'] / r['matmul_flops_per_s'])
    table = (out / 'benchmark_search.md').read_text()
    assert '| per-edge |' in table and '(x1.00)' in table
    assert '| fused+amp (bfloat16) |' in table
    # the paper's config without its data here: Cityscapes' 2975 images
    assert 'Projected search' in table and '744 iterations/epoch' in table
    assert results['fused']['projection']['full_iters'] == 14880
    assert 'Machine:' in table
    assert 'benchmark_search.json' in capsys.readouterr().out


@pytest.mark.parametrize('args,expected', [
    (['--config', 'missing.py'], "error: config 'missing.py' not found"),
    (['--batch', '1'], 'error: --batch must be >= 2'),
    (['--crop', '33'], 'error: argument --crop: expected HxW'),
])
def test_bad_arguments_are_one_line(args, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([*args, '--out', str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count('\n') == 1, err


@pytest.mark.slow
def test_baseline_rows_come_from_the_other_checkout(tmp_path):
    """--baseline DIR: each variant also timed with DIR's package, first;
    --rounds: interleaved repeats folded into one row per variant."""
    import os.path as osp
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    out = tmp_path / 'bench'
    rc = main(['--crop', '33x33', '--filter-multiplier', '2', '--num-layers',
               '3', '--repeat', '1', '--warmup', '0', '--variants', 'fused',
               '--no-macs', '--baseline', repo, '--rounds', '2', '--out',
               str(out), '--device', 'cpu'])
    assert rc == 0
    data = json.loads((out / 'benchmark_search.json').read_text())
    assert [r['variant'] for r in data['results']] == ['fused (baseline)',
                                                      'fused']
    for r in data['results']:  # two rounds, one row each
        assert len(r['search_iter_s_rounds']) == 2
        assert r['search_iter_s'] == pytest.approx(
            sum(r['search_iter_s_rounds']) / 2)
        lo, hi = r['search_iter_spread_s']
        assert lo <= min(r['search_iter_s_rounds']) <= hi
    assert '| fused (baseline) |' in (out / 'benchmark_search.md').read_text()
    with pytest.raises(SystemExit):
        main(['--baseline', str(tmp_path), '--out', str(out)])


def test_search_schedule_and_projection_arithmetic():
    # 2975 images -> trainA 1488 -> 744 iterations of 2; 40 epochs, α/β
    # from 20
    assert search_schedule(2975, 2, 40, 20) == (744, 20, 20)
    assert search_schedule(2975, 2, 40, 20, drop_last=True) == (744, 20, 20)
    assert search_schedule(9, 2, 3, 1) == (3, 1, 2)  # trainA 5, ceil(5/2)
    assert search_schedule(9, 2, 3, 1, drop_last=True) == (2, 1, 2)
    # 4 processes: each rank's share of trainA 1488, 372 -> 186 of 2
    assert search_schedule(2975, 2, 40, 20, world_size=4) == (186, 20, 20)
    p = project_search(1.0, 2.5, 744, 20, 20)
    assert p['weight_only_iters'] == p['full_iters'] == 14880
    assert p['weight_only_s'] == 14880.0 and p['full_s'] == 37200.0
    assert p['total_s'] == 52080.0
    assert project_search(1.0, 2.5, 744, 0, 40)['total_s'] == 744 * 40 * 2.5


def test_projection_table_from_injected_timings():
    """The paper's config and schedule with injected step times: one row
    per measured variant, hours from the arithmetic above."""
    args = parse_args(['--train-images', '2975'])
    results = [
        dict(variant='fused', weight_step_s=1.0, search_iter_s=2.5,
             peak_memory_bytes=7.9e9),
        dict(variant='fused+amp', weight_step_s=0.5, search_iter_s=1.0,
             peak_memory_bytes=4.2e9),
        dict(variant='fused+cp+amp', skipped='no GPU')]
    lines = projection_lines(args, results)
    text = '\n'.join(lines)
    assert '2975 training images (--train-images) -> trainA 1488, 744 ' \
        'iterations/epoch at batch 2; 20 weight-only + 20 full epochs' in text
    assert '| fused | 14880 x 1.000 s | 14880 x 2.500 s | 14.5 | 7.90 |' \
        in lines
    # 14880 * 0.5 + 14880 * 1.0 = 22320 s
    assert '| fused+amp | 14880 x 0.500 s | 14880 x 1.000 s | 6.2 | 4.20 |' \
        in lines
    assert 'fused+cp+amp' not in text
    assert results[1]['projection']['total_s'] == 22320.0
    # no data here and no --train-images: the paper's Cityscapes count
    lines = projection_lines(parse_args([]), results[:1])
    assert any('2975 training images (Cityscapes train_fine' in line
               for line in lines)


@pytest.mark.slow
def test_macs_count_every_conv_of_the_supernet():
    """The count sees the convs inside the fused path's autograd Functions
    (mmengine's tracer cannot): at least the dispatch-level conv + matmul
    count of the fused network."""
    import torch

    from benchmark_search import build_supernet, count_supernet_macs
    from measure import count_dense_macs

    from mmseg_autodeeplab.analysis import SegmentorLogits
    args = parse_args(['--crop', '33x33', '--filter-multiplier', '2',
                       '--num-layers', '3'])
    torch.manual_seed(0)
    model, _ = build_supernet(args, 'fused')
    inputs = torch.randn(2, 3, 33, 33)
    dense = count_dense_macs(SegmentorLogits(model).eval(), inputs)
    macs = count_supernet_macs(args)['macs_fwd']
    # mmengine also counts BN, pooling and resizing: above, never below
    # (1.17x at this tiny width, 1.01x at the paper's)
    assert dense <= macs <= 1.25 * dense
