"""tools/analysis/benchmark.py: JSON/Markdown output, counts, ratios, bad
input."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

import mmseg_autodeeplab  # noqa: F401
from mmseg_autodeeplab.analysis import SegmentorLogits, count_macs
import benchmark as bm

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'benchmark.py')


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """S at F=4 and BiSeNetV2 at 64x128, one timed run each."""
    out = tmp_path_factory.mktemp('bench')
    rc = bm.main(['--models', 'autodeeplab-s', 'bisenetv2', '--size',
                  '64x128', '--repeat', '1', '--warmup', '0', '-F', '4',
                  '--out', str(out)])
    assert rc == 0
    with open(out / 'benchmark.json') as f:
        result = json.load(f)
    return result, (out / 'benchmark.md').read_text()


def test_json_fields(tiny_run):
    result, _ = tiny_run
    assert result['complete'] is True
    assert result['size'] == [64, 128]
    assert result['reference'] == 'deeplabv3plus-r101'
    machine = result['machine']
    for key in ('cpu', 'cpu_count', 'torch_threads', 'torch', 'gpu',
                'device'):
        assert key in machine
    assert machine['torch'] == torch.__version__
    names = [m['name'] for m in result['models']]
    assert names == ['autodeeplab-s', 'bisenetv2']
    for m in result['models']:
        assert m['params'] > 0 and m['macs'] > 0
        lat = m['latency']
        assert len(lat['runs_ms']) == 1
        assert lat['min_ms'] <= lat['median_ms'] <= lat['max_ms']
        # the reference was not measured: no ratios, but the keys exist
        assert m['params_ratio'] is None and m['latency_ratio'] is None
    bisenet = result['models'][1]
    assert bisenet['params_with_aux'] > bisenet['params']  # 4 aux heads


def test_params_equal_a_direct_count(tiny_run):
    result, _ = tiny_run
    for row in result['models']:
        model = bm.build_model(row['name'], 19, 4)
        direct = sum(p.numel() for n, p in model.named_parameters()
                     if not n.startswith('auxiliary_head.'))
        assert row['params'] == direct
    s = result['models'][0]
    assert s['label'] == 'Auto-DeepLab-S (F=4)'
    assert s['params'] == s['params_with_aux']


def test_table_has_ratio_columns(tiny_run):
    _, md = tiny_run
    header = next(line for line in md.splitlines() if line.startswith('|'))
    for col in ('Params / DeepLabV3+ R-101-D8', 'MACs / DeepLabV3+ R-101-D8',
                'Latency / DeepLabV3+ R-101-D8', 'Latency median (ms)',
                'min–max (ms)', 'MACs @64x128 (G)'):
        assert col in header
    assert 'AMD' in md or 'Intel' in md or 'CPUs' in md  # the machine
    assert 'Ratios need the reference' in md


def test_ratios_against_a_measured_reference():
    rows = [dict(name='a', params=10, macs=30, latency=dict(median_ms=4.)),
            dict(name='ref', params=20, macs=60, latency=dict(median_ms=2.))]
    bm.add_ratios(rows, 'ref')
    assert (rows[0]['params_ratio'], rows[0]['macs_ratio'],
            rows[0]['latency_ratio']) == (0.5, 0.5, 2.0)
    assert rows[1]['params_ratio'] == 1.0


@pytest.mark.slow
def test_macs_equal_get_model_complexity_info():
    """The counter is exactly mmengine's get_model_complexity_info flops."""
    from mmengine.analysis import get_model_complexity_info
    model = bm.build_model('autodeeplab-s', 19, 2)
    wrapper = SegmentorLogits(model)
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        info = get_model_complexity_info(wrapper, inputs=(x, ),
                                         show_table=False, show_arch=False)
    assert count_macs(wrapper, x) == info['flops']


def test_latency_stats():
    stats = bm.latency_stats([0.004, 0.001, 0.002, 0.003])
    assert stats['median_ms'] == pytest.approx(2.5)
    assert (stats['min_ms'], stats['max_ms']) == pytest.approx((1., 4.))
    assert stats['q1_ms'] <= stats['median_ms'] <= stats['q3_ms']


@pytest.mark.parametrize('args,expected', [
    (['--models', 'autodeeplab-xl'],
     "error: unknown model 'autodeeplab-xl'; valid names: autodeeplab-s, "),
    (['--reference', 'resnet'], "error: unknown --reference 'resnet'"),
    (['--size', '10x10'], 'error: argument --size: expected HxW'),
    (['--repeat', '0'], 'error: argument --repeat: expected a positive'),
    (['--device', 'tpu'], 'error: --device tpu: expected cpu, cuda'),
])
def test_bad_input_is_one_line(args, expected, tmp_path, capsys):
    try:
        rc = bm.main([*args, '--out', str(tmp_path)])
    except SystemExit as e:  # argparse errors
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and err.startswith(expected), err
    assert not (tmp_path / 'benchmark.json').exists()


@pytest.mark.slow
def test_cli_unknown_model(tmp_path):
    """The script itself: one line listing the valid names, exit 2."""
    proc = subprocess.run([sys.executable, TOOL, '--models', 'resnet50',
                           '--out', str(tmp_path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines()
             if ln.startswith('error')]
    assert lines == ["error: unknown model 'resnet50'; valid names: "
                     'autodeeplab-s, autodeeplab-m, autodeeplab-l, '
                     'deeplabv3plus-r50, deeplabv3plus-r101, pspnet-r101, '
                     'bisenetv2'], proc.stderr
    assert proc.stdout == ''
