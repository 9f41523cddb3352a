"""Every malformed genotype file raises GenotypeError naming the file."""
import json
import os.path as osp

import pytest
import torch

from mmseg_autodeeplab.search_space import Genotype, GenotypeError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = osp.join(REPO, 'configs', 'genotypes', 'autodeeplab_paper.json')


def _paper():
    with open(PAPER, encoding='utf-8') as f:
        return json.load(f)


def _with(space_key=None, value=None, **top):
    data = _paper()
    if space_key is not None:
        data['search_space'][space_key] = value
    data.update(top)
    return json.dumps(data)


CASES = {
    'non_utf8': (b'\xff\xfe\x00{', 'not UTF-8'),
    'deep_nesting': ('[' * 200000 + ']' * 200000, 'nested too deeply'),
    'huge_integer': (json.dumps(_paper()).replace(
        '"path": [', '"path": [' + '9' * 5000 + ', ', 1), 'invalid JSON'),
    'strides_null': (_with('strides', None), 'search_space.strides'),
    'strides_strings': (_with('strides', ['a', 'b', 'c', 'd']),
                        'search_space.strides'),
    'strides_not_halving': (_with('strides', [4, 8, 16, 33]),
                            'search_space.strides'),
    'primitives_int': (_with('primitives', 3), 'search_space.primitives'),
    'primitives_unknown': (_with('primitives', ['none', 'conv_9x9']),
                           'search_space.primitives'),
    'version_newer': (_with(version=2), 'newer release'),
    'version_string': (_with(version='1'), 'version'),
    'num_layers_float': (_with('num_layers', 12.5), 'num_layers'),
    'cell_not_list': (_with(cell={'H1': 1}), 'cell'),
    'path_null': (_with(path=None), 'path'),
    'top_level_list': ('[1, 2]', 'JSON object'),
    'empty': ('', 'invalid JSON'),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_malformed_file_is_one_line_naming_it(tmp_path, name):
    content, expected = CASES[name]
    path = tmp_path / f'{name}.json'
    path.write_bytes(content if isinstance(content, bytes) else
                     content.encode())
    with pytest.raises(GenotypeError) as exc:
        Genotype.load(path)
    msg = str(exc.value)
    assert msg.startswith(str(path)) and '\n' not in msg
    assert expected in msg


def test_directory_and_oversized_file(tmp_path):
    with pytest.raises(GenotypeError, match='not found'):
        Genotype.load(tmp_path)
    big = tmp_path / 'big.json'
    big.write_bytes(b' ' * (2 << 20))
    with pytest.raises(GenotypeError, match='too large'):
        Genotype.load(big)


def test_valid_file_still_loads():
    g = Genotype.load(PAPER)
    assert len(g.path) == 12 and len(g.cell.blocks) == 5


def test_legacy_checkpoint_is_refused_with_one_line(tmp_path):
    # what the previous version wrote: mmengine's HistoryBuffer pickled
    from mmengine.logging import HistoryBuffer

    from mmseg_autodeeplab.utils.checkpoint import (CheckpointError,
                                                    safe_load_checkpoint)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'iter': 2}, 'state_dict': {},
                'message_hub': {'log_scalars': {
                    'loss': HistoryBuffer([1.0], [1])}}}, path)
    with pytest.raises(CheckpointError) as exc:
        safe_load_checkpoint(path)
    msg = str(exc.value)
    assert '\n' not in msg and str(path) in msg
    assert 'earlier mmseg-autodeeplab' in msg and 'getattr' in msg


def test_plain_message_hub_round_trip():
    import numpy as np
    from mmengine.logging import HistoryBuffer

    from mmseg_autodeeplab.utils.checkpoint import from_plain, to_plain
    hub = {'log_scalars': {'loss': HistoryBuffer([0.5, 0.25], [1, 2], 7)},
           'runtime_info': {'eta': np.float64(1.5), 'ids': [1, 2],
                            'arr': np.arange(3)}}
    back = from_plain(to_plain(hub))
    buf = back['log_scalars']['loss']
    assert isinstance(buf, HistoryBuffer) and buf.max_length == 7
    assert buf.data[0].tolist() == [0.5, 0.25]
    assert buf.data[1].tolist() == [1, 2]
    assert back['runtime_info']['eta'] == 1.5
    assert back['runtime_info']['arr'].tolist() == [0, 1, 2]
