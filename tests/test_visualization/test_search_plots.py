"""Search plots: valid PNGs that highlight exactly the decoded architecture.

Every plot is drawn from a synthetic ``search_history.json`` (same layout as
GenotypeHook writes); the data a plot function returns (outlined α cells,
highlighted path, cell edges, curves) is checked against an independent
decode of the entry with :func:`decode_cell` / :func:`decode_path`.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from mmseg_autodeeplab import (PRIMITIVES, SearchSpace, decode_cell,
                               decode_genotype, decode_path, normalize_betas)
from mmseg_autodeeplab.search_space import input_names, num_edges

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# tools/plot_search.py is a script (tools/ is no package)
_spec = importlib.util.spec_from_file_location(
    'tools_plot_search', os.path.join(REPO, 'tools', 'plot_search.py'))
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)
SearchHistoryError, infer_arch_start, load_history, main = (
    _tool.SearchHistoryError, _tool.infer_arch_start, _tool.load_history,
    _tool.main)
plot_alpha_heatmap, plot_beta_trellis, plot_cell, plot_search_curves = (
    _tool.plot_alpha_heatmap, _tool.plot_beta_trellis, _tool.plot_cell,
    _tool.plot_search_curves)

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PLOTS = {'alpha_heatmap.png', 'beta_trellis.png', 'cell.png',
         'search_curves.png'}


def make_history(num_layers=4, epochs=4, arch_start=1, seed=0,
                 end_level=None):
    """Entries like GenotypeHook's: epoch 0 (val at start) .. ``epochs``."""
    g = torch.Generator().manual_seed(seed)
    target_a = 3 * torch.randn(num_edges(5), len(PRIMITIVES), generator=g)
    target_b = 3 * torch.randn(num_layers, 4, 3, generator=g)
    space = SearchSpace(num_layers=num_layers)
    history = []
    for epoch in range(epochs + 1):
        s = max(epoch - arch_start, 0) / max(epochs - arch_start, 1)
        a = 1e-3 * torch.randn(target_a.shape, generator=g) + s * target_a
        b = 1e-3 * torch.randn(target_b.shape, generator=g) + s * target_b
        alpha, beta = torch.softmax(a, -1), normalize_betas(b)
        genotype = decode_genotype(a, b, space, end_level=end_level)
        history.append(dict(
            epoch=epoch, iter=2 * epoch, arch_active=epoch > arch_start,
            mIoU=None if epoch == 2 else 10.0 + epoch,
            alpha_entropy=float(-(alpha * alpha.log()).sum(-1).mean()),
            beta_entropy=0.9 - 0.1 * s, alpha=alpha.tolist(),
            beta=beta.tolist(), genotype=genotype.to_dict()))
    return history


def assert_png(path, min_size=200):
    assert os.path.isfile(path) and os.path.getsize(path) > 1000
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) >= min_size
    assert image.std() > 0.01  # not a blank canvas
    # written atomically: no temp file left beside it
    leftovers = [n for n in os.listdir(os.path.dirname(path))
                 if n.endswith('.tmp')]
    assert not leftovers


def expected_cells(entry):
    """(edge_row, op) chosen by an independent decode of the entry's α."""
    cell = decode_cell(np.log(np.asarray(entry['alpha'])))
    offsets = [num_edges(b) for b in range(len(cell.blocks))]
    return sorted((offsets[b] + i, op) for b, block in enumerate(cell.blocks)
                  for i, op in block)


@pytest.fixture(scope='module')
def history():
    return make_history()


def test_alpha_heatmap_outlines_the_decoded_choices(history, tmp_path):
    entry = history[-1]
    out = tmp_path / 'sub' / 'alpha.png'  # folder created on demand
    chosen = plot_alpha_heatmap(entry, out)
    assert_png(str(out))
    assert chosen == expected_cells(entry)
    assert len(chosen) == 10 and all(op != 'none' for _, op in chosen)


def test_alpha_heatmap_near_uniform_alpha(history, tmp_path):
    # epoch 0: untrained supernet, α almost uniform; still a readable plot
    chosen = plot_alpha_heatmap(history[0], tmp_path / 'alpha0.png')
    assert_png(str(tmp_path / 'alpha0.png'))
    assert chosen == expected_cells(history[0])


@pytest.mark.parametrize('num_layers', [4, 12])
def test_beta_trellis_highlights_the_viterbi_path(tmp_path, num_layers):
    entry = make_history(num_layers=num_layers, epochs=2, seed=1)[-1]
    out = tmp_path / 'beta.png'
    path = plot_beta_trellis(entry, out)
    assert_png(str(out))
    assert path == decode_path(torch.tensor(entry['beta']))
    assert len(path) == num_layers


def test_beta_trellis_follows_a_forced_end_level(tmp_path):
    free = make_history(num_layers=6, epochs=2, seed=3)[-1]
    viterbi = decode_path(torch.tensor(free['beta']))
    end = 0 if viterbi[-1] != 0 else 1
    entry = make_history(num_layers=6, epochs=2, seed=3, end_level=end)[-1]
    path = plot_beta_trellis(entry, tmp_path / 'beta.png')
    assert path == entry['genotype']['path'] != viterbi
    assert path == decode_path(torch.tensor(entry['beta']), end_level=end)


def test_entry_without_genotype_is_refused(history, tmp_path):
    # GenotypeHook records the genotype; the plots never re-decode α/β
    entry = {k: v for k, v in history[-1].items() if k != 'genotype'}
    with pytest.raises(SearchHistoryError, match='missing field "genotype"'):
        plot_alpha_heatmap(entry, tmp_path / 'a.png')
    assert not os.path.exists(tmp_path / 'a.png')


def test_cell_graph_draws_every_branch(history, tmp_path):
    genotype = history[-1]['genotype']
    edges = plot_cell(genotype, tmp_path / 'cell.png')
    assert_png(str(tmp_path / 'cell.png'))
    expected = [(inp['input'], block['name'], inp['op'])
                for block in genotype['cell'] for inp in block['inputs']]
    assert edges == expected
    for source, block, _ in edges:
        assert source in input_names(int(block[1:]) - 1)


def test_search_curves(history, tmp_path):
    data = plot_search_curves(history, tmp_path / 'curves.png')
    assert_png(str(tmp_path / 'curves.png'))
    assert data['epochs'] == [0, 1, 2, 3, 4]
    assert data['arch_start_epoch'] == 1  # last inactive entry
    assert math.isnan(data['mIoU'][2]) and data['mIoU'][4] == 14.0
    assert data['alpha_entropy'][0] == pytest.approx(math.log(8), abs=1e-3)
    forced = plot_search_curves(history, tmp_path / 'c2.png',
                                arch_start_epoch=3)
    assert forced['arch_start_epoch'] == 3


def test_search_curves_recorded_start_and_predicted_cost(history,
                                                        tmp_path):
    budgeted = [dict(h, arch_start_epoch=2, cost=dict(
        kind='macs', predicted=1e9 - 1e8 * h['epoch'], expected=1e9,
        target=7e8)) for h in history]
    data = plot_search_curves(budgeted, tmp_path / 'curves.png')
    assert_png(str(tmp_path / 'curves.png'))
    assert data['arch_start_epoch'] == 2  # recorded, not inferred
    assert data['predicted_cost'] == [1e9, 9e8, 8e8, 7e8, 6e8]
    assert data['cost_target'] == 7e8
    assert plot_search_curves(history, tmp_path / 'c.png')['cost_target'] \
        is None


@pytest.mark.parametrize('active, epochs, expected', [
    ([False, False, True, True], [0, 1, 2, 3], (1, True)),
    ([False, True], [0, 4], (0, False)),  # start somewhere in [0, 4)
    ([True, True], [1, 2], (0, True)),
    ([False, False], [0, 1], (None, True)),
])
def test_infer_arch_start(active, epochs, expected):
    history = [dict(epoch=e, arch_active=a) for e, a in zip(epochs, active)]
    assert infer_arch_start(history) == expected


# ------------------------------------------------------------------- CLI ---
def _write(work_dir, history):
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / 'search_history.json').write_text(json.dumps(history))


def _main(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err.strip().splitlines()


def test_cli_writes_all_plots(capsys, tmp_path, history):
    work = tmp_path / 'work'
    _write(work, history)
    rc, out, err = _main(capsys, work, '--entry', '3')
    assert rc == 0, err
    assert set(os.listdir(work / 'plots')) == PLOTS  # default: WORK_DIR/plots
    for name in PLOTS:
        assert_png(str(work / 'plots' / name))
        assert name in out
    assert 'entry 3 (epoch 3)' in out


def _history_file(tmp_path, text):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'search_history.json').write_text(text)
    return work


@pytest.mark.parametrize('case, expected', [
    ('no_work_dir', 'work_dir not found'),
    ('no_history', 'search_history.json: file not found'),
    ('bad_json', 'search_history.json: invalid JSON'),
    ('not_a_list', 'expected a JSON list'),
    ('empty', 'the history is empty'),
    ('entry_out_of_range', 'entry 7 out of range'),
    ('negative_out_of_range', 'entry -9 out of range'),
    ('bad_alpha', 'entry 4: "alpha" must be a non-empty 2-D array'),
    ('bad_epoch', 'entry 1: "epoch" must be a non-negative number'),
    ('bad_genotype', 'entry 4: genotype'),
])
def test_cli_bad_input(capsys, tmp_path, history, case, expected):
    work = tmp_path / 'work'
    argv = [work]
    if case == 'no_work_dir':
        pass
    elif case == 'no_history':
        work.mkdir()
    elif case == 'bad_json':
        _history_file(tmp_path, '[{"epoch": 0,')
    elif case == 'not_a_list':
        _history_file(tmp_path, '{"epoch": 0}')
    elif case == 'empty':
        _history_file(tmp_path, '[]')
    elif case in ('entry_out_of_range', 'negative_out_of_range'):
        _write(work, history)
        argv += ['--entry', '7' if case == 'entry_out_of_range' else '-9']
    else:
        broken = json.loads(json.dumps(history))
        if case == 'bad_alpha':
            broken[4]['alpha'] = [0.5, 0.5]
        elif case == 'bad_epoch':
            broken[1]['epoch'] = 'one'
        else:
            broken[4]['genotype']['path'] = [0, 3, 0, 0]
        _write(work, broken)
    rc, out, err = _main(capsys, *argv)
    assert rc == 2
    assert len(err) == 1 and err[0].startswith('error: '), err
    assert expected in err[0]
    if case not in ('no_work_dir', ):
        assert 'search_history.json' in err[0]
    assert not (work / 'plots').exists()
    assert out == ''


def test_load_history_names_the_file(tmp_path):
    work = _history_file(tmp_path, '[1, 2]')
    with pytest.raises(SearchHistoryError, match='entry 0: expected an '
                       'object'):
        load_history(work)


@pytest.mark.slow  # a fresh interpreter importing mmseg: seconds
def test_tool_script_runs_main(tmp_path):
    """tools/plot_search.py puts the repo on sys.path and exits with 2."""
    missing = tmp_path / 'nowhere'
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, 'tools', 'plot_search.py'),
         str(missing)], capture_output=True, text=True, cwd=str(tmp_path),
        timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'nowhere' in lines[0]
    assert not missing.exists()
