"""Retrain configs: every config builds; each dataset family trains and
evaluates through mmseg's real dataset classes, pipelines and IoUMetric on
generated data; ``mim train`` / ``mim test`` end to end (slow); bad input
(missing data root, mismatching checkpoint) gives one line.
"""
import functools
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

import mmseg_autodeeplab  # noqa: F401  (compat + registration)
from mmseg_autodeeplab.datasets.demo_data import (make_ade20k,
                                                  make_cityscapes, make_voc)
from custom_data import make_custom_dataset  # tests/test_tools
# imported explicitly: the tests below use them directly
from mmseg_autodeeplab.engine import checked_loops  # noqa: F401
from mmseg_autodeeplab.engine.checkpoint_match_hook import (
    CheckpointMatchHook, compare_state_dicts, describe_mismatch)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'autodeeplab')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
SIZE = 64  # generated images are SIZE x SIZE
TINY_F = 2

#: dataset tag in a config name -> (maker, S config at the paper schedule,
#: classes, crop, paper iterations)
FAMILIES = {
    'cityscapes': (make_cityscapes, 'autodeeplab-s_paper-genotype_8xb2-1.5m_'
                   'cityscapes-769x769.py', 19, 769, 1500000),
    'voc': (make_voc, 'autodeeplab-s_paper-genotype_8xb2-1.5m_voc12aug-'
            '513x513.py', 21, 513, 1500000),
    'ade20k': (make_ade20k, 'autodeeplab-s_paper-genotype_8xb2-4m_ade20k-'
               '513x513.py', 150, 513, 4000000),
    # mmseg's generic img_dir/ann_dir layout (BaseSegDataset), 2 classes
    'custom': (functools.partial(make_custom_dataset, num_classes=2),
               'autodeeplab-s_paper-genotype_8xb2-80k_custom-513x513.py', 2,
               513, 80000),
}
_TAGS = {'cityscapes-769x769': 'cityscapes', 'voc12aug-513x513': 'voc',
         'ade20k-513x513': 'ade20k', 'custom-513x513': 'custom'}
_SCHEDULES = {'1.5m': 1500000, '4m': 4000000, '160k': 160000, '80k': 80000}


@pytest.fixture(autouse=True, scope='module')
def _mmseg_scope():
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)


_NAME_RE = re.compile(r'^autodeeplab-([sml])_paper-genotype_8xb2-'
                      r'([0-9.]+[mk])_([a-z0-9]+-\d+x\d+)\.py$')


# --------------------------------------------------------------------------
# helpers
@pytest.fixture(scope='module')
def datasets(tmp_path_factory):
    """One tiny generated dataset per family: 4 train / 2 val, 64x64."""
    roots = {}
    for family, (maker, *_) in FAMILIES.items():
        root = str(tmp_path_factory.mktemp('data') / family)
        maker(root, num_train=4, num_val=2, size=(SIZE, SIZE), seed=0)
        roots[family] = root
    return roots


def tiny_options(family, data_root, f=TINY_F):
    """cfg-options turning a retrain config into a seconds-long run on
    generated ``SIZE x SIZE`` data: small F/stem/head, small crops and
    resizes, 2 iterations with validation and a checkpoint at the end."""
    scale = f'({2 * SIZE},{SIZE})'
    crop = f'({SIZE},{SIZE})'
    opts = {
        'model.backbone.filter_multiplier': f,
        'model.backbone.stem_channels': '(8,8,16)',
        # channels follow F: Cell_2 5F, last cell 10F (paper genotype)
        'model.decode_head.in_channels': 10 * f,
        'model.decode_head.c1_in_channels': 5 * f,
        'model.decode_head.channels': 16,
        'model.decode_head.c1_channels': 8,
        'model.data_preprocessor.size': crop,
        'train_cfg.max_iters': 2,
        'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.logger.interval': 1,
    }
    if family == 'voc':  # ConcatDataset(train.txt, aug.txt)
        train_sets = ['train_dataloader.dataset.datasets.0',
                      'train_dataloader.dataset.datasets.1']
    else:
        train_sets = ['train_dataloader.dataset']
    for ds in train_sets:
        opts[f'{ds}.data_root'] = data_root
        opts[f'{ds}.pipeline.2.scale'] = scale  # RandomResize
        opts[f'{ds}.pipeline.3.crop_size'] = crop  # RandomCrop
        if family == 'voc':
            opts[f'{ds}.pipeline.6.size'] = crop  # Pad
    for split in ('val', 'test'):
        opts[f'{split}_dataloader.dataset.data_root'] = data_root
        opts[f'{split}_dataloader.dataset.pipeline.1.scale'] = scale
    for split in ('train', 'val', 'test'):
        opts[f'{split}_dataloader.num_workers'] = 0
        opts[f'{split}_dataloader.persistent_workers'] = False
    return opts


def _as_cli(opts):
    return [f'{k}={v}' for k, v in opts.items()]


def _load_cfg(config, options=None):
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config)
    if options:
        # parse values exactly as --cfg-options would
        parsed = {k: DictAction._parse_iterable(str(v))
                  for k, v in options.items()}
        cfg.merge_from_dict(parsed)
    return cfg


def _mim(*args, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, '-m', 'mim', *args], cwd=REPO,
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout


def parse_miou(output):
    """The last ``mIoU: x`` value mmengine logged, as a float."""
    values = re.findall(r'\bmIoU: (nan|[0-9]+(?:\.[0-9]+)?)', output)
    assert values, output[-3000:]
    return float(values[-1])


# --------------------------------------------------------------------------
# every config
def test_config_family_is_complete():
    names = {osp.basename(c) for c in CONFIGS}
    for model in 'sml':
        for tag, scheds in (('cityscapes-769x769', ('1.5m', '160k')),
                            ('voc12aug-513x513', ('1.5m', '80k')),
                            ('ade20k-513x513', ('4m', '160k'))):
            for sched in scheds:
                assert (f'autodeeplab-{model}_paper-genotype_8xb2-{sched}_'
                        f'{tag}.py') in names


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_loads_and_builds(config):
    from mmseg.registry import MODELS
    match = _NAME_RE.match(osp.basename(config))
    assert match, f'{config}: not an mmseg-style name'
    size, sched, tag = match.groups()
    family = _TAGS[tag]
    _, _, classes, crop, _ = FAMILIES[family]
    cfg = _load_cfg(config)
    assert cfg.custom_imports.imports == ['mmseg_autodeeplab']
    assert cfg.train_cfg.max_iters == _SCHEDULES[sched]
    assert cfg.param_scheduler[0].end == _SCHEDULES[sched]
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.optim_wrapper.optimizer.lr == 0.05
    assert cfg.model.decode_head.num_classes == classes
    assert tuple(cfg.model.data_preprocessor.size) == (crop, crop)
    assert cfg.norm_cfg.type == 'SyncBN'
    train_sets = cfg.train_dataloader.dataset.get(
        'datasets', [cfg.train_dataloader.dataset])
    for ds in train_sets:  # the crop reaches every training dataset
        crops = [t.crop_size for t in ds.pipeline if t.type == 'RandomCrop']
        assert [tuple(c) for c in crops] == [(crop, crop)]
    f = cfg.model.backbone.filter_multiplier
    assert f == {'s': 20, 'm': 32, 'l': 48}[size]
    head = cfg.model.decode_head
    assert (head.in_channels, head.c1_in_channels) == (10 * f, 5 * f)
    # build at a small F (channels scale with F)
    cfg.model.backbone.filter_multiplier = TINY_F
    head.in_channels, head.c1_in_channels = 10 * TINY_F, 5 * TINY_F
    model = MODELS.build(cfg.model)
    assert model.backbone.out_channels == [head.c1_in_channels,
                                           head.in_channels]


def test_metafile_and_model_index_list_every_config():
    import yaml
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert 'configs/autodeeplab/metafile.yaml' in index['Import']
    with open(osp.join(CONFIG_DIR, 'metafile.yaml')) as f:
        meta = yaml.safe_load(f)
    listed = {m['Config'] for m in meta['Models']}
    assert listed == {osp.relpath(c, REPO) for c in CONFIGS}
    for m in meta['Models']:
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
        assert m['In Collection'] == meta['Collections'][0]['Name']
        assert isinstance(m['Results'], list)  # only measured results


# --------------------------------------------------------------------------
# each family through the real dataset class, pipeline and metric
@pytest.mark.parametrize('family', list(FAMILIES))
def test_family_trains_and_evaluates_in_process(family, datasets):
    """Tiny F: 1 training step on a real-pipeline batch, then IoUMetric."""
    from mmengine.dataset import pseudo_collate
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import DATASETS, METRICS, MODELS
    _, config, classes, _, _ = FAMILIES[family]
    cfg = _load_cfg(osp.join(CONFIG_DIR, config),
                    tiny_options(family, datasets[family]))
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train_set) == (4 + 6 if family == 'voc' else 4)
    assert len(val_set) == 2
    assert len(val_set.metainfo['classes']) == classes
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    losses = model.train_step(pseudo_collate([train_set[0], train_set[1]]),
                              optim)
    assert torch.isfinite(losses['loss'])
    model.eval()
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = val_set.metainfo
    for i in range(len(val_set)):
        batch = pseudo_collate([val_set[i]])
        outputs = model.val_step(batch)
        label = outputs[0].gt_sem_seg.data
        # train ids or 255 (ignored; ADE20K's 0 "other" via reduce_zero_label)
        assert ((label < classes) | (label == 255)).all()
        metric.process(batch, [o.to_dict() for o in outputs])
    miou = metric.compute_metrics(metric.results)['mIoU']
    assert 0 <= miou <= 100


# --------------------------------------------------------------------------
# bad input, in process
def test_missing_data_root_is_one_line(capsys, tmp_path):
    from mmseg_autodeeplab.engine.checked_loops import \
        CheckedIterBasedTrainLoop
    missing = str(tmp_path / 'no_such_cityscapes')
    loader = dict(dataset=dict(type='CityscapesDataset', data_root=missing,
                               data_prefix=dict(
                                   img_path='leftImg8bit/train',
                                   seg_map_path='gtFine/train')))
    with pytest.raises(SystemExit) as exc:
        CheckedIterBasedTrainLoop(None, loader, max_iters=2)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0
    assert err.startswith('error: train_dataloader.dataset '
                          '(CityscapesDataset): data_root')
    assert missing in err


def test_checkpoint_mismatch_is_one_line(capsys):
    from types import SimpleNamespace

    from mmengine.config import Config
    from mmseg_autodeeplab.models.backbones import AutoDeepLabNet
    paper = osp.join(REPO, 'configs', 'genotypes', 'autodeeplab_paper.json')
    small = AutoDeepLabNet(paper, filter_multiplier=2)
    big = AutoDeepLabNet(paper, filter_multiplier=4)
    assert describe_mismatch(compare_state_dicts(
        small.state_dict(), small.state_dict())) == ''
    diff = compare_state_dicts(
        big.state_dict(),
        {'module.' + k: v for k, v in small.state_dict().items()})
    assert diff['shape'] and not diff['missing'] and not diff['unexpected']
    runner = SimpleNamespace(model=big,
                             cfg=Config(dict(load_from='f2.pth')))
    with pytest.raises(SystemExit) as exc:
        CheckpointMatchHook().after_load_checkpoint(
            runner, dict(state_dict=small.state_dict()))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0
    assert err.startswith('error: checkpoint f2.pth does not match the '
                          'model')
    # a matching checkpoint passes silently; allowed keys are not reported
    CheckpointMatchHook().after_load_checkpoint(
        runner, dict(state_dict=big.state_dict()))
    partial = {k: v for k, v in big.state_dict().items()
               if not k.startswith('stem.')}
    CheckpointMatchHook(allow_missing=[r'^stem\.']).after_load_checkpoint(
        runner, dict(state_dict=partial))


# --------------------------------------------------------------------------
# mim train / mim test end to end
@pytest.mark.slow
@pytest.mark.parametrize('family', list(FAMILIES))
def test_mim_train_then_test(family, datasets, tmp_path):
    _, config, _, _, _ = FAMILIES[family]
    config = osp.join(CONFIG_DIR, config)
    work_dir = str(tmp_path / 'work')
    opts = tiny_options(family, datasets[family])
    rc, out = _mim('train', 'mmsegmentation', config, '--work-dir',
                   work_dir, '--cfg-options', *_as_cli(opts))
    assert rc == 0, out[-4000:]
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt), out[-2000:]
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert 'backbone.stem.conv0.weight' in state['state_dict']
    assert 0 <= parse_miou(out) <= 100  # validation at iteration 2

    rc, out = _mim('test', 'mmsegmentation', config, '--checkpoint', ckpt,
                   '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                   *_as_cli(opts))
    assert rc == 0, out[-4000:]
    miou = parse_miou(out)
    assert 0 <= miou <= 100

    if family != 'cityscapes':
        return
    # a checkpoint from F=2 on an F=4 model: one clear line, no evaluation
    rc, out = _mim('test', 'mmsegmentation', config, '--checkpoint', ckpt,
                   '--work-dir', str(tmp_path / 'test4'), '--cfg-options',
                   *_as_cli(tiny_options(family, datasets[family], f=4)))
    assert rc != 0
    assert re.search(r'^error: checkpoint \S+iter_2\.pth does not match '
                     r'the model', out, re.M), out[-3000:]
    assert 'mIoU:' not in out
    # a missing data root: one clear line before any work
    bad = dict(opts, **{'train_dataloader.dataset.data_root':
                        str(tmp_path / 'missing')})
    rc, out = _mim('train', 'mmsegmentation', config, '--work-dir',
                   str(tmp_path / 'bad'), '--cfg-options', *_as_cli(bad))
    assert rc != 0
    assert re.search(r'^error: train_dataloader\.dataset \(CityscapesDataset'
                     r'\): data_root \S+missing\S* does not exist', out,
                     re.M), out[-3000:]


@pytest.mark.slow
def test_mim_train_under_mixed_precision(datasets, tmp_path):
    """A retrain config trains under mmseg's own tools/train.py in mixed
    precision: ``--amp`` on a GPU; on CPU, where mmengine's AmpOptimWrapper
    refuses to start, bfloat16 through its CPU-capable subclass."""
    _, config, _, _, _ = FAMILIES['cityscapes']
    config = osp.join(CONFIG_DIR, config)
    work_dir = str(tmp_path / 'work')
    opts = tiny_options('cityscapes', datasets['cityscapes'])
    amp = ['--amp']
    if not torch.cuda.is_available():
        amp, opts['optim_wrapper.type'] = [], 'SearchAmpOptimWrapper'
    rc, out = _mim('train', 'mmsegmentation', config, '--work-dir',
                   work_dir, *amp, '--cfg-options', *_as_cli(opts))
    assert rc == 0, out[-4000:]
    dumped = open(osp.join(work_dir, osp.basename(config))).read()
    assert re.search(r"type='(Search)?AmpOptimWrapper'", dumped)
    state = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu',
                       weights_only=True)
    assert 'loss_scaler' in state['optimizer']  # the amp wrapper stepped
    assert 0 <= parse_miou(out) <= 100
