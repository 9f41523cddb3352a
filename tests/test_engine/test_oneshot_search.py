"""The one-shot search (OneShotSearchLoop + SubnetSamplerHook) through
tools/search.py on generated data, its resume, and decode_genotype
--inherit from it."""
import json
import os
import os.path as osp
import shutil

import pytest
import torch

from mmseg_autodeeplab.cli import decode_genotype, search
from mmseg_autodeeplab.search_space import Genotype
from mmseg_autodeeplab.utils.checkpoint import safe_load_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'autodeeplab_search',
                  'autodeeplab-oneshot_f8-l4_1xb4-3000i_demo-cityscapes-'
                  '64x64.py')
# a search run (~30 s of CPU) and its resume: with the slow checks
pytestmark = pytest.mark.slow
RETRAIN = osp.join(REPO, 'configs', 'search_vs_random',
                   'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-'
                   '64x64.py')
F = 2
WIDTHS = [5 * F * 2**j for j in range(4)]


def _options(data_root, **extra):
    opts = {
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'model.backbone.filter_multiplier': F,
        'model.backbone.stem_channels': (8, 8, 8),
        'model.decode_head.in_channels': WIDTHS,
        'model.decode_head.c1_in_channels': WIDTHS,
        'model.decode_head.channels': 8,
        'train_cfg.max_iters': 6, 'train_cfg.val_interval': 6,
        'param_scheduler.0.end': 6,
        'train_cfg.arch_cost': None,
        'train_cfg.search.num_candidates': 3,
        'train_cfg.search.max_epochs': 2, 'train_cfg.search.top_k': 2,
        'train_cfg.search.num_mutation': 1,
        'train_cfg.search.num_crossover': 1,
        'train_cfg.search.calib_batches': 1,
        'default_hooks.checkpoint.interval': 3,
        'default_hooks.checkpoint.save_best': None,
        'default_hooks.logger.interval': 1,
    }
    opts.update(extra)
    return [f'{k}={v!r}'.replace(' ', '') if not isinstance(v, str) else
            f'{k}={v}' for k, v in opts.items()]


def _search(work_dir, data_root, *flags, **extra):
    return search.main([CONFIG, '--work-dir', work_dir, *flags,
                        '--cfg-options', *_options(data_root, **extra)])


@pytest.fixture(scope='module')
def oneshot_run(tiny_cityscapes, tmp_path_factory, one_thread):
    work_dir = str(tmp_path_factory.mktemp('oneshot'))
    assert _search(work_dir, tiny_cityscapes) == 0
    return work_dir


def test_search_writes_a_scored_genotype_and_a_pareto_front(oneshot_run):
    data = json.load(open(osp.join(oneshot_run, 'genotype.json')))
    genotype = Genotype.from_dict(data)
    assert genotype.search_space.num_layers == 4
    state = json.load(open(osp.join(oneshot_run, 'evolution_state.json')))
    # [cell, path, score, cost] per scored candidate
    scored = {json.dumps(c[:2]): c[2] for c in state['evaluated']}
    assert len(scored) == 6  # 3 candidates x 2 generations, none twice
    # the written best is the best scored, with its score
    best = max(scored.values())
    assert data['score']['mAcc'] == pytest.approx(best)  # the config's metric
    key = json.dumps([[list(map(list, b)) for b in genotype.cell.blocks],
                      list(genotype.path)])
    assert scored[key] == best
    front = json.load(open(osp.join(oneshot_run, 'pareto.json')))
    assert front and front[-1]['score'] == pytest.approx(best)


def test_checkpoints_hold_the_sampler_and_the_active_genotype(oneshot_run):
    ckpt = safe_load_checkpoint(osp.join(oneshot_run, 'iter_3.pth'))
    saved = ckpt['subnet_sampler']
    assert saved['state']['step'] == 3 and saved['state']['type'] == \
        'UniformSampler'
    # the active genotype is the sampler's third draw
    from mmseg_autodeeplab.search_space import SearchSpace
    from mmseg_autodeeplab.search_space.oneshot_sampling import \
        UniformSampler
    sampler = UniformSampler(SearchSpace(num_layers=4, num_blocks=5),
                             seed=saved['state']['seed'])
    draws = [sampler.sample() for _ in range(3)]
    assert Genotype.from_dict(saved['genotype']) == draws[-1]


def test_resume_continues_the_draws_and_the_evolution(oneshot_run,
                                                      tiny_cityscapes,
                                                      tmp_path):
    work_dir = str(tmp_path / 'resumed')
    shutil.copytree(oneshot_run, work_dir)
    for name in ('iter_6.pth', 'iter_6.pth.sha256', 'genotype.json',
                 'pareto.json', 'last_checkpoint'):
        if osp.exists(osp.join(work_dir, name)):
            os.remove(osp.join(work_dir, name))
    # a search killed after two candidates: keep them only
    state_path = osp.join(work_dir, 'evolution_state.json')
    state = json.load(open(state_path))
    state['evaluated'] = state['evaluated'][:2]
    json.dump(state, open(state_path, 'w'))
    assert _search(work_dir, tiny_cityscapes, '--resume') == 0
    a = safe_load_checkpoint(osp.join(oneshot_run, 'iter_6.pth'))
    b = safe_load_checkpoint(osp.join(work_dir, 'iter_6.pth'))
    for key in ('state', 'genotype'):
        assert a['subnet_sampler'][key] == b['subnet_sampler'][key]
    # the resumed training ends on the same weights, bit for bit
    assert a['state_dict'].keys() == b['state_dict'].keys()
    assert all(torch.equal(v, b['state_dict'][k])
               for k, v in a['state_dict'].items())
    # the two kept scores were taken, the rest scored again, to the same
    # result
    assert json.load(open(osp.join(work_dir, 'evolution_state.json'))
                     )['evaluated'] == json.load(open(osp.join(
                         oneshot_run, 'evolution_state.json')))['evaluated']


def test_decode_inherits_the_oneshot_weights(oneshot_run, tmp_path):
    out = str(tmp_path / 'retrain.py')
    args = [oneshot_run, '--base', RETRAIN, '--inherit', oneshot_run,
            '--out', out, '--cfg-options', 'model.backbone.stem_channels=(8,8,8)',
            'model.decode_head.channels=8']
    assert decode_genotype.main(args + ['-F', str(F)]) == 0
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(out)
    assert osp.abspath(cfg.load_from) == osp.abspath(
        str(tmp_path / 'retrain_inherited.pth'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    weights = safe_load_checkpoint(cfg.load_from)
    model.load_state_dict(weights['state_dict'], strict=True)
    # the values are the one-shot's: its stem conv, unchanged
    oneshot = safe_load_checkpoint(osp.join(oneshot_run, 'iter_6.pth'))
    key = 'backbone.stem.conv0.weight'
    assert torch.equal(weights['state_dict'][key],
                       oneshot['state_dict'][key])


def test_decode_inherit_refuses_a_mismatched_base(oneshot_run, tmp_path,
                                                  capsys):
    # F=8 (the base's) is not the one-shot's F=2: one line, nothing written
    with pytest.raises(SystemExit):
        decode_genotype.main([oneshot_run, '--base', RETRAIN, '--inherit',
                              oneshot_run, '--out',
                              str(tmp_path / 'x.py')])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'does not give the decoded network' in err[0]
    assert not list(tmp_path.iterdir())
