"""tools/analysis/benchmark.py --config (any config beside the baselines) and
--onnxruntime (a second runtime column)."""
import json

import pytest

import mmseg_autodeeplab  # noqa: F401
import benchmark as bm
from mmseg_autodeeplab.cli.decode_genotype import main as decode

from test_infer_export import PAPER_JSON, needs_deploy


@pytest.fixture(scope='module')
def decoded(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('cfg') / 'my_searched.py')
    assert decode([PAPER_JSON, '-F', '2', '--smoke', '--out', out]) == 0
    return out


@pytest.mark.slow
@needs_deploy
def test_config_and_onnxruntime_columns(decoded, tmp_path):
    out = tmp_path / 'bench'
    assert bm.main(['--models', 'autodeeplab-s', '-F', '4', '--config',
                    decoded, '--size', '64x96', '--repeat', '2', '--warmup',
                    '1', '--onnxruntime', '--reference', 'autodeeplab-s',
                    '--out', str(out)]) == 0
    result = json.loads((out / 'benchmark.json').read_text())
    assert result['onnxruntime'] is True and result['onnxruntime_version']
    rows = {r['name']: r for r in result['models']}
    assert list(rows) == ['autodeeplab-s', 'config:my_searched']
    mine = rows['config:my_searched']
    assert mine['label'] == 'my_searched' and mine['config'] == decoded
    model = bm.build_model('x', 19, path=decoded)
    assert mine['params'] == sum(p.numel() for p in model.parameters())
    for row in rows.values():
        ort = row['onnxruntime']
        assert len(ort['runs_ms']) == 2 and ort['median_ms'] > 0
        # the timed ONNX model computes what PyTorch computes
        assert ort['max_abs_diff'] <= 1e-4
        assert row['ort_speedup'] == pytest.approx(
            row['latency']['median_ms'] / ort['median_ms'])
    assert rows['autodeeplab-s']['ort_latency_ratio'] == 1.0
    md = (out / 'benchmark.md').read_text()
    header = next(line for line in md.splitlines() if line.startswith('|'))
    for col in ('ORT latency median (ms)', 'PyTorch / ORT',
                'ORT latency / Auto-DeepLab-S'):
        assert col in header
    assert '| my_searched |' in md


def test_bad_config_and_flags_are_one_line(decoded, tmp_path, capsys):
    cases = [
        (['--config', str(tmp_path / 'nope.py')], 'no such config file'),
        (['--config', decoded, '--config', decoded], 'same file name'),
        (['--onnxruntime', '--no-latency'], 'drop --no-latency'),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exc:
            bm.main(['--models', 'bisenetv2', '--size', '64x64',
                     '--out', str(tmp_path / 'o')] + argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith('error: ') and err.count('\n') == 1, err
        assert message in err
