"""tools/analysis/count_autodeeplab.py: the counting conventions, --json."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn

from measure import tf_multiply_adds

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'count_autodeeplab.py')


def _tool():
    spec = importlib.util.spec_from_file_location('count_autodeeplab', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Toy(nn.Module):
    """A dilated conv, TF-style image pooling and a biased classifier."""

    def __init__(self):
        super().__init__()
        self.atrous = nn.Conv2d(3, 4, 3, padding=2, dilation=2, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Conv2d(4, 2, 1, bias=False)
        self.cls = nn.Conv2d(4, 5, 1)  # bias: a BiasAdd
        self.decode_head = nn.Module()
        self.decode_head.num_classes = 5

    def _forward(self, x):
        y = self.atrous(x[:, :, ::8, ::8])
        return self.cls(y) + self.proj(self.pool(y)).mean()


def test_tf_convention_rules_by_hand():
    # input 81x161 -> features 11x21 at stride 8; crop 33 -> pool 5x5
    counts = tf_multiply_adds(_Toy(), size=(81, 161), crop=(33, 33))
    atrous = 12 * 22 * 4 * 3 * 9  # SpaceToBatch: 11x21 rounded up to 2
    proj = (11 - 5 + 1) * (21 - 5 + 1) * 2 * 4  # on the 7x17 pooled map
    cls = 11 * 21 * 5 * 4
    assert counts['conv'] == atrous + proj + cls
    pool = 7 * 17 * 4 * 25
    bias = 11 * 21 * 5
    argmax = 4 * 81 * 161
    assert counts['elementwise'] == pool + bias + argmax
    assert counts['total'] == counts['conv'] + counts['elementwise'] / 2


def test_json_and_bad_size(tmp_path, capsys):
    tool = _tool()
    out, js = tmp_path / 'rows.json', tmp_path / 'counts.json'
    assert tool.main(['--models', 's', '--convention', 'tf', '--size',
                      '65x129', '--out', str(out), '--json', str(js)]) == 0
    counts = json.loads(js.read_text())
    assert list(counts) == ['Auto-DeepLab-S']
    assert counts['Auto-DeepLab-S']['params'] == 10147427
    rows = json.loads(out.read_text())
    assert rows[0]['convention'] == 'tf' and rows[0]['paper_macs'] is None
    assert counts['Auto-DeepLab-S']['macs'] == rows[0]['macs'] > 1e9
    assert 'MACs (tf) @65x129' in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        tool.main(['--size', '65'])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith('error: argument --size')


@pytest.mark.slow
def test_tf_convention_reproduces_table_2_for_s():
    tool = _tool()
    torch.manual_seed(0)
    model = tool.build_model('s')
    total = tf_multiply_adds(model)['total']
    assert total / tool.PAPER['s']['macs'] == pytest.approx(1, abs=2e-3)
