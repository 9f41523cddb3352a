"""Kill a tiny search at several points, resume, compare bitwise (slow)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))


def _run(data_root, work, point, resume=False, early_stop=False):
    cmd = [sys.executable, osp.join(HERE, 'fault_run.py'), data_root,
           str(work), point] + (['--resume'] if resume else []) + (
               ['--early-stop'] if early_stop else [])
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


def _outcome(work):
    """Everything a finished search leaves that must not depend on kills."""
    history = json.loads((work / 'search_history.json').read_text())
    genotypes = {p: (work / 'genotypes' / p).read_text()
                 for p in sorted(os.listdir(work / 'genotypes'))}
    final = torch.load(work / 'epoch_3.pth', weights_only=True)['state_dict']
    return dict(history=history, genotype=(work / 'genotype.json').read_text(),
                genotypes=genotypes, alphas=final['backbone.alphas'],
                betas=final['backbone.betas'])


@pytest.fixture(scope='module')
def reference(tiny_cityscapes, tmp_path_factory):
    work = tmp_path_factory.mktemp('reference') / 'w'
    done = _run(tiny_cityscapes, work, 'none')
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = _outcome(work)
    assert [h['epoch'] for h in outcome['history']] == [1, 2, 3]
    return outcome


@pytest.mark.slow
@pytest.mark.parametrize('point, exit_code', [
    ('iter:3', 137),      # mid epoch 2, inside the alpha/beta phase
    ('ckpt:2', 137),      # halfway through writing epoch_2.pth
    ('val:2', 137),       # after epoch_2.pth, before its validation ended
    ('history:2', 137),   # halfway through the 2nd history write
    ('sigterm:3', 143),   # preempted: graceful checkpoint, then exit
])
def test_kill_and_resume_equals_uninterrupted(reference, tiny_cityscapes,
                                              tmp_path, point, exit_code):
    work = tmp_path / 'w'
    killed = _run(tiny_cityscapes, work, point)
    assert killed.returncode == exit_code, killed.stderr[-2000:]
    if point.startswith('sigterm'):
        last = killed.stderr.strip().splitlines()[-1]
        assert last.startswith('Stopped by SIGTERM after iteration 3: '
                               'checkpoint ')
        assert '--resume' in last and 'Traceback' not in killed.stderr
        assert (work / 'iter_3.pth').is_file()
    resumed = _run(tiny_cityscapes, work, 'none', resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = _outcome(work)
    assert got['history'] == reference['history']
    assert got['genotype'] == reference['genotype']
    assert got['genotypes'] == reference['genotypes']
    assert torch.equal(got['alphas'], reference['alphas'])
    assert torch.equal(got['betas'], reference['betas'])
    leftovers = [n for folder in (work, work / 'genotypes')
                 for n in os.listdir(folder)
                 if n.endswith(('.partial', '.tmp'))]
    assert leftovers == []


def _early_stop_outcome(work):
    final = torch.load(work / 'iter_6.pth', weights_only=True)
    return dict(alphas=final['state_dict']['backbone.alphas'],
                betas=final['state_dict']['backbone.betas'],
                stop=final['autodeeplab_search_loop'].get('arch_stop_iter'),
                genotype=(work / 'genotype.json').read_text())


@pytest.mark.slow
@pytest.mark.parametrize('point, exit_code', [
    ('iter:4', 137),     # killed after iter_4.pth, the stop's iteration
    ('sigterm:4', 143),  # preempted there: the graceful iter_4.pth
])
def test_early_stop_survives_a_kill_at_its_epochs_last_iteration(
        tiny_cityscapes, tmp_path, point, exit_code):
    """DARTS+ fires at the end of epoch 2 (iteration 4); a run killed right
    after that iteration's checkpoint resumes to the uninterrupted run's
    α/β, genotype and stop iteration. Before, the checkpoint of iteration 4
    was written before the stop was decided and the resumed run updated
    α/β through epoch 3."""
    reference = tmp_path / 'reference'
    done = _run(tiny_cityscapes, reference, 'none', early_stop=True)
    assert done.returncode == 0, done.stderr[-2000:]
    want = _early_stop_outcome(reference)
    assert want['stop'] == 4
    work = tmp_path / 'w'
    killed = _run(tiny_cityscapes, work, point, early_stop=True)
    assert killed.returncode == exit_code, killed.stderr[-2000:]
    assert not (work / 'iter_5.pth').exists()
    resumed = _run(tiny_cityscapes, work, 'none', resume=True,
                   early_stop=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = _early_stop_outcome(work)
    assert got['stop'] == want['stop']
    assert got['genotype'] == want['genotype']
    assert torch.equal(got['alphas'], want['alphas'])
    assert torch.equal(got['betas'], want['betas'])
