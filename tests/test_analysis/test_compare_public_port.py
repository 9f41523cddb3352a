"""tools/analysis/compare_public_port.py: errors, the alternation, the
ratios, and a whole run against a tiny stand-in for the port's code."""
import json
import statistics
import sys
import textwrap

import pytest
import torch

from compare_public_port import (alternate, cuda_is_identity, import_port,
                                 main, summarize)

pytestmark = pytest.mark.usefixtures('one_thread')

#: a third-party fixture in the port's shape: AutoDeeplab(num_classes,
#: num_layers, criterion, filter_multiplier, block_multiplier, step) with
#: weight_parameters()/arch_parameters(), importing a sibling module and
#: the compiled-extension module the tool stands in for, calling .cuda()
#: in its forward; it logs its construction and every training forward
PORT = '''
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import tiny_ops
from modeling.modules import InPlaceABNSync as ABN

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'log.txt')


class AutoDeeplab(nn.Module):
    def __init__(self, num_classes, num_layers, criterion=None,
                 filter_multiplier=8, block_multiplier=5, step=5):
        super().__init__()
        with open(LOG, 'a') as f:
            f.write(f'init {num_classes} {num_layers} {filter_multiplier} '
                    f'{block_multiplier} {step}\\n')
        self.stem = tiny_ops.conv_bn(3, filter_multiplier)
        self.head = nn.Conv2d(filter_multiplier, num_classes, 1)
        self.alphas = nn.Parameter(1e-3 * torch.randn(4))

    def forward(self, x):
        if self.training:
            with open(LOG, 'a') as f:
                f.write(f'forward {float(self.alphas.sum())!r}\\n')
        w = torch.softmax(self.alphas, 0).cuda()
        y = self.head(self.stem(F.avg_pool2d(x, 2)) * (4 * w[0]))
        return F.interpolate(y, size=x.shape[2:], mode='bilinear')

    def arch_parameters(self):
        return [self.alphas]

    def weight_parameters(self):
        return [p for n, p in self.named_parameters() if n != 'alphas']
'''
OPS = '''
import torch.nn as nn


def conv_bn(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1),
                         nn.BatchNorm2d(c_out), nn.ReLU())
'''


@pytest.fixture
def port_dir(tmp_path):
    root = tmp_path / 'port'
    (root / 'modeling').mkdir(parents=True)
    (root / 'modeling' / '__init__.py').write_text('')
    (root / 'auto_deeplab.py').write_text(PORT)
    (root / 'tiny_ops.py').write_text(OPS)
    return root


@pytest.mark.parametrize('make,args,expected', [
    (None, [], "error: --port-dir '{d}/none': no such directory"),
    ('empty', [], "error: --port-dir '{d}/empty': no auto_deeplab.py there"),
    ('broken', [], 'error: --port-dir {d}/broken: importing auto_deeplab.py '
     "failed (ModuleNotFoundError: No module named 'no_such_module')"),
    ('other', [], 'error: --port-dir {d}/other: auto_deeplab.py defines no '
     'AutoDeeplab'),
    ('other', ['--batch', '1'], 'error: --batch must be >= 2'),
    (None, ['--crop', '33'], 'error: argument --crop: expected HxW'),
])
def test_mistakes_are_one_line(make, args, expected, tmp_path, capsys):
    d = tmp_path / (make or 'none')
    if make:
        d.mkdir()
    if make == 'broken':
        (d / 'auto_deeplab.py').write_text('import no_such_module\n')
    if make == 'other':
        (d / 'auto_deeplab.py').write_text('X = 1\n')
    with pytest.raises(SystemExit) as e:
        main(['--port-dir', str(d), '--out', str(tmp_path / 'out'), *args])
    assert e.value.code == (1 if make in ('broken', 'other') and not args
                            else 2)
    err = capsys.readouterr().err
    assert err.startswith(expected.format(d=tmp_path)), err
    assert err.count('\n') == 1, err
    assert 'auto_deeplab' not in sys.modules


def test_alternation_order_and_times():
    calls, seen = [], []
    steps = {'port': lambda: calls.append('port'),
             'ours': lambda: calls.append('ours')}
    times = alternate(steps, 2, 3, lambda i, last: seen.append((i, last)))
    # warm-up rounds first, every round port then ours
    assert calls == ['port', 'ours'] * 5
    assert [len(t) for t in times.values()] == [3, 3]
    assert [i for i, _ in seen] == [0, 1, 2]
    assert seen[-1][1] == {'port': times['port'][-1],
                           'ours': times['ours'][-1]}


def test_ratios_from_the_recorded_times():
    r = summarize([2.0, 4.0, 3.0], [1.0, 1.0, 3.0])
    assert r['ratios'] == [0.5, 0.25, 1.0]
    assert r['ratio_median_of_rounds'] == 0.5
    assert r['ratio_of_medians'] == pytest.approx(1 / 3)
    assert r['port']['median_s'] == 3.0 and r['port']['spread_s'] == [2, 4]
    assert r['ours']['times_s'] == [1.0, 1.0, 3.0]


def test_cuda_is_identity_only_inside():
    saved = torch.Tensor.cuda
    t = torch.zeros(2)
    with cuda_is_identity():
        assert t.cuda() is t and t.cuda(0, non_blocking=True) is t
    assert torch.Tensor.cuda is saved


def test_port_import_leaves_no_trace(port_dir):
    module = import_port(str(port_dir))
    # the stand-in for the compiled extension refuses to be built
    with pytest.raises(RuntimeError, match='stands in'):
        module.ABN(4)
    for name in ('auto_deeplab', 'tiny_ops', 'modeling', 'modeling.modules'):
        assert name not in sys.modules, name
    assert str(port_dir) not in sys.path


@pytest.mark.slow
def test_side_by_side_run(port_dir, tmp_path, capsys):
    out = tmp_path / 'out'
    rc = main(['--port-dir', str(port_dir), '--crop', '33x33',
               '--filter-multiplier', '2', '--num-layers', '3', '--rounds',
               '2', '--warmup', '1', '--out', str(out)])
    assert rc == 0
    r = json.loads((out / 'compare_public_port.json').read_text())
    log = (port_dir / 'log.txt').read_text().splitlines()
    # built once with our F, L, B (block_multiplier and step) and classes;
    # stepped warm-up + rounds times, its α never moved by the weight SGD
    assert log[0] == 'init 19 3 2 5 5'
    forwards = [line.split()[1] for line in log[1:]]
    assert len(forwards) == 1 + 2 and len(set(forwards)) == 1
    assert r['spec']['filter_multiplier'] == 2
    assert r['spec']['num_layers'] == 3 and r['spec']['num_blocks'] == 5
    port, ours = r['port'], r['ours']
    assert len(port['times_s']) == len(ours['times_s']) == 2
    assert len(r['matmul_rounds']) == 2
    assert r['ratios'] == [o / p for o, p in zip(ours['times_s'],
                                                  port['times_s'])]
    assert r['ratio_median_of_rounds'] == statistics.median(r['ratios'])
    assert r['ratio_of_medians'] == pytest.approx(
        statistics.median(ours['times_s'])
        / statistics.median(port['times_s']))
    # the fake's weights: conv 3->2 (+bias), BN(2), conv 2->19 (+bias)
    assert port['weights'] == 3 * 2 * 9 + 2 + 2 * 2 + 2 * 19 + 19
    assert ours['weights'] > port['weights']
    # the port's forward counted by mmengine too (this one traces)
    for side in (port, ours):
        assert side['macs_fwd'] > 0 and side['dense_macs_fwd'] > 0
        assert side['flop_rate'] == pytest.approx(
            6 * side['macs_fwd'] / side['median_s'] / r[
                'matmul_flops_per_s'])
    assert port['dense_macs_fwd'] == 2 * 16 * 16 * (3 * 2 * 9 + 2 * 19)
    assert 'macs_note' not in r
    table = (out / 'compare_public_port.md').read_text()
    assert '| public port (NoamRosenberg/autodeeplab) |' in table
    assert f'ours / port: {r["ratio_median_of_rounds"]:.3f}' in table
    printed = capsys.readouterr().out
    assert '[round 2/2] port' in printed
    assert 'compare_public_port.json' in printed
