"""Tests of the genotype value: JSON round trip, immutability, validation."""
import copy
import dataclasses
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import mmseg_autodeeplab  # noqa: E402,F401
from mmseg_autodeeplab import (PRIMITIVES, CellGenotype, Genotype,  # noqa
                               GenotypeError, SearchSpace)
from mmseg_autodeeplab.search_space import input_names  # noqa: E402

# The strides of the published path (paper_path, tests/conftest.py).
STRIDES = [4, 4, 4, 8, 16, 8, 16, 16, 32, 32, 16, 8]


@pytest.fixture
def genotype(paper_cell, paper_path):
    return Genotype(cell=CellGenotype(paper_cell), path=paper_path)


def _write(tmp_path, data, name='g.json'):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def _load_error(tmp_path, data):
    p = _write(tmp_path, data)
    with pytest.raises(GenotypeError) as e:
        Genotype.load(p)
    msg = str(e.value)
    assert '\n' not in msg, 'errors are one line'
    assert str(p) in msg, 'errors name the file'
    return msg


def test_input_names():
    assert input_names(0) == ['H(l-2)', 'H(l-1)']
    assert input_names(2) == ['H(l-2)', 'H(l-1)', 'H1', 'H2']


# -- round trip --------------------------------------------------------------

def test_json_round_trip(tmp_path, genotype, paper_cell, paper_path):
    p = tmp_path / 'sub' / 'genotype.json'
    genotype.save(p)
    loaded = Genotype.load(p)
    assert loaded == genotype
    assert loaded.cell.blocks == paper_cell
    assert loaded.path == paper_path
    assert loaded.search_space == SearchSpace()
    assert Genotype.from_json(genotype.to_json()) == genotype
    # saving again gives the same text
    assert loaded.to_json() == p.read_text()


def test_json_file_is_readable_names_not_indices(tmp_path, genotype,
                                                 paper_path):
    p = tmp_path / 'g.json'
    genotype.save(p)
    text = p.read_text()
    data = json.loads(text)
    assert '"H(l-2)"' in text and '"H(l-1)"' in text
    assert data['path'] == list(paper_path)
    assert data['path_strides'] == STRIDES
    cell = data['cell']
    assert len(cell) == 5
    assert cell[0]['name'] == 'H1'
    assert cell[0]['inputs'] == [
        {'input': 'H(l-2)', 'op': 'atrous_conv_5x5'},
        {'input': 'H(l-1)', 'op': 'sep_conv_3x3'}]
    assert cell[4]['inputs'] == [
        {'input': 'H2', 'op': 'sep_conv_5x5'},
        {'input': 'H4', 'op': 'atrous_conv_5x5'}]
    for block in cell:
        for pair in block['inputs']:
            assert isinstance(pair['input'], str)
            assert pair['op'] in PRIMITIVES
    space = data['search_space']
    assert space['num_layers'] == 12 and space['num_blocks'] == 5
    assert space['primitives'] == list(PRIMITIVES)
    assert space['strides'] == [4, 8, 16, 32]


def test_round_trip_with_a_small_search_space(tmp_path):
    space = SearchSpace(num_layers=3, num_blocks=2)
    blocks = (((1, 'skip_connect'), (0, 'max_pool_3x3')),
              ((2, 'avg_pool_3x3'), (1, 'skip_connect')))
    g = Genotype(cell=CellGenotype(blocks), path=[1, 1, 0],
                 search_space=space)
    # pairs are normalised to input order, lists to tuples
    assert g.cell.blocks == (((0, 'max_pool_3x3'), (1, 'skip_connect')),
                             ((1, 'skip_connect'), (2, 'avg_pool_3x3')))
    assert g.path == (1, 1, 0)
    g.save(tmp_path / 'small.json')
    loaded = Genotype.load(tmp_path / 'small.json')
    assert loaded == g and loaded.search_space == space
    assert loaded.path_strides == (8, 8, 4)


def test_minimal_hand_written_file_loads(tmp_path):
    data = dict(cell=[dict(inputs=[dict(input='H(l-1)', op='sep_conv_3x3'),
                                   dict(input='H(l-2)', op='skip_connect')])],
                path=[0, 1])
    g = Genotype.load(_write(tmp_path, data))
    assert g.cell.blocks == (((0, 'skip_connect'), (1, 'sep_conv_3x3')), )
    assert g.path == (0, 1)
    assert g.search_space.num_layers == 2


# -- immutability ------------------------------------------------------------

def test_genotype_is_immutable(genotype, paper_cell, paper_path):
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.path = (0, ) * 12
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.cell = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.cell.blocks = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.search_space.num_layers = 3
    assert isinstance(genotype.path, tuple)
    assert isinstance(genotype.cell.blocks, tuple)
    with pytest.raises(TypeError):
        genotype.path[0] = 1
    # a value: hashable, equal by content
    same = Genotype(cell=CellGenotype(copy.deepcopy(paper_cell)),
                    path=list(paper_path))
    assert same == genotype and hash(same) == hash(genotype)
    assert len({genotype, same}) == 1


def test_list_inputs_are_frozen():
    path = [0, 1, 1]
    blocks = [[(0, 'skip_connect'), (1, 'sep_conv_3x3')]]
    g = Genotype(cell=CellGenotype(blocks), path=path,
                 search_space=SearchSpace(num_layers=3, num_blocks=1))
    path.append(2)
    blocks[0].append((1, 'max_pool_3x3'))
    assert g.path == (0, 1, 1)
    assert g.cell.blocks == (((0, 'skip_connect'), (1, 'sep_conv_3x3')), )


# -- describe ----------------------------------------------------------------

def test_describe(genotype):
    assert genotype.describe().splitlines() == [
        'H1 = atrous_conv_5x5(H(l-2)) + sep_conv_3x3(H(l-1))',
        'H2 = sep_conv_3x3(H(l-2)) + atrous_conv_3x3(H(l-1))',
        'H3 = sep_conv_3x3(H(l-2)) + sep_conv_3x3(H2)',
        'H4 = sep_conv_5x5(H1) + sep_conv_5x5(H3)',
        'H5 = sep_conv_5x5(H2) + atrous_conv_5x5(H4)',
        'path (strides): 4 4 4 8 16 8 16 16 32 32 16 8',
    ]
    assert genotype.path_strides == tuple(STRIDES)


# -- validation on load ------------------------------------------------------

@pytest.fixture
def good(genotype):
    return genotype.to_dict()


def test_load_missing_file(tmp_path):
    p = tmp_path / 'nope' / 'genotype.json'
    with pytest.raises(GenotypeError) as e:
        Genotype.load(p)
    assert str(p) in str(e.value)
    assert isinstance(e.value, ValueError)


def test_load_invalid_json(tmp_path):
    msg = _load_error(tmp_path, '{"cell": [1, 2,')
    assert 'JSON' in msg


def test_load_top_level_not_an_object(tmp_path):
    _load_error(tmp_path, '[1, 2, 3]')


def test_load_unknown_op(tmp_path, good):
    good['cell'][2]['inputs'][1]['op'] = 'conv_9x9'
    msg = _load_error(tmp_path, good)
    assert 'cell[2]' in msg and 'op' in msg and "'conv_9x9'" in msg


def test_load_zero_op(tmp_path, good):
    good['cell'][3]['inputs'][0]['op'] = 'none'
    msg = _load_error(tmp_path, good)
    assert 'cell[3]' in msg and "'none'" in msg


def test_load_wrong_block_count(tmp_path, good):
    del good['cell'][4]
    msg = _load_error(tmp_path, good)
    assert 'cell' in msg and '5' in msg and '4' in msg


def test_load_input_refers_to_future_block(tmp_path, good):
    good['cell'][1]['inputs'][1]['input'] = 'H3'  # block H2 cannot see H3
    msg = _load_error(tmp_path, good)
    assert 'cell[1]' in msg and "'H3'" in msg and 'input' in msg


def test_load_input_refers_to_itself(tmp_path, good):
    good['cell'][2]['inputs'][0]['input'] = 'H3'  # block H3 itself
    msg = _load_error(tmp_path, good)
    assert 'cell[2]' in msg and "'H3'" in msg


def test_load_unknown_input_name(tmp_path, good):
    good['cell'][0]['inputs'][0]['input'] = 'H(l-3)'
    msg = _load_error(tmp_path, good)
    assert 'cell[0]' in msg and 'H(l-3)' in msg


def test_load_three_inputs_in_a_block(tmp_path, good):
    good['cell'][2]['inputs'].append(dict(input='H1', op='skip_connect'))
    msg = _load_error(tmp_path, good)
    assert 'cell[2]' in msg and '2' in msg


def test_load_missing_fields(tmp_path, good):
    bad = dict(good)
    del bad['path']
    assert 'path' in _load_error(tmp_path, bad)
    bad = dict(good)
    del bad['cell']
    assert 'cell' in _load_error(tmp_path, bad)
    bad = copy.deepcopy(good)
    del bad['cell'][0]['inputs'][1]['op']
    msg = _load_error(tmp_path, bad)
    assert 'cell[0]' in msg and 'op' in msg


def test_load_path_wrong_length(tmp_path, good):
    good['path'] = good['path'][:-1]
    msg = _load_error(tmp_path, good)
    assert 'path' in msg and '12' in msg and '11' in msg


def test_load_path_step_of_two_levels(tmp_path, good):
    good['path'][3] = 2  # 0 -> 2
    good['path'][4] = 2
    msg = _load_error(tmp_path, good)
    assert 'path[3]' in msg


def test_load_path_first_level_two(tmp_path, good):
    good['path'][:3] = [2, 1, 0]
    msg = _load_error(tmp_path, good)
    assert 'path[0]' in msg


@pytest.mark.parametrize('level', [4, -1])
def test_load_path_level_out_of_range(tmp_path, good, level):
    good['path'][-1] = level
    msg = _load_error(tmp_path, good)
    assert 'path[11]' in msg and str(level) in msg


@pytest.mark.parametrize('level', ['1', 1.0, True, None])
def test_load_path_level_not_an_integer(tmp_path, good, level):
    good['path'][5] = level
    msg = _load_error(tmp_path, good)
    assert 'path[5]' in msg


def test_load_wrong_format_tag(tmp_path, good):
    good['format'] = 'something.else'
    assert 'format' in _load_error(tmp_path, good)


def test_load_bad_search_space(tmp_path, good):
    bad = copy.deepcopy(good)
    bad['search_space']['num_layers'] = 0
    assert 'num_layers' in _load_error(tmp_path, bad)
    bad = copy.deepcopy(good)
    bad['search_space']['colour'] = 'blue'
    assert 'colour' in _load_error(tmp_path, bad)


# -- validation on construction ----------------------------------------------

def test_constructor_validates(paper_cell, paper_path):
    with pytest.raises(GenotypeError, match='none'):
        CellGenotype((((0, 'none'), (1, 'skip_connect')), ))
    with pytest.raises(GenotypeError, match='H1'):
        CellGenotype((((0, 'skip_connect'), (2, 'skip_connect')), ))
    with pytest.raises(GenotypeError, match='path'):
        Genotype(cell=CellGenotype(paper_cell), path=paper_path[:-1])
    with pytest.raises(GenotypeError, match='cell'):
        Genotype(cell=CellGenotype(paper_cell[:4]), path=paper_path)
    with pytest.raises(GenotypeError, match='num_blocks'):
        SearchSpace(num_blocks=0)
    # an op outside the search space's own primitives
    space = SearchSpace(num_layers=12, primitives=('none', 'skip_connect'))
    with pytest.raises(GenotypeError, match='atrous_conv_5x5'):
        Genotype(cell=CellGenotype(paper_cell), path=paper_path,
                 search_space=space)
