"""tools/decode_genotype.py: search output -> genotype JSON + config."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

import mmseg_autodeeplab  # noqa: F401
from mmseg_autodeeplab.cli.decode_genotype import main
from mmseg_autodeeplab.models.backbones import autodeeplab_net  # noqa: F401
from mmseg_autodeeplab.models.decode_heads import \
    autodeeplab_head  # noqa: F401
from mmseg_autodeeplab.search_space import (Genotype, decode_genotype,
                                            num_edges)

from custom_data import make_custom_dataset  # noqa: E402  (tests/test_tools)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER_JSON = osp.join(REPO, 'configs', 'genotypes', 'autodeeplab_paper.json')


def _arch(seed=0, blocks=5, layers=12):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(num_edges(blocks), 8, generator=g),
            torch.randn(layers, 4, 3, generator=g))


def _save_ckpt(path, alphas=None, betas=None, with_hub=False):
    state = {'backbone.stem.0.weight': torch.zeros(2, 3, 3, 3)}
    if alphas is not None:
        state['backbone.alphas'] = alphas
    if betas is not None:
        state['backbone.betas'] = betas
    # the iteration inside the file is what picks a work_dir's checkpoint
    m = re.search(r'(\d+)\.pth$', path)
    epoch = int(m.group(1)) if m else 3
    ckpt = {'meta': {'epoch': epoch, 'iter': 10 * epoch, 'seed': 0},
            'state_dict': state}
    if with_hub:  # what our Runner hooks put in every checkpoint
        from mmengine.logging import MessageHub

        from mmseg_autodeeplab.utils.checkpoint import to_plain
        hub = MessageHub.get_instance('decode_genotype_test')
        hub.update_scalar('train/loss', 1.5)
        ckpt['message_hub'] = to_plain(hub.state_dict())
    torch.save(ckpt, path)
    return path


@pytest.fixture
def work_dir(tmp_path):
    wd = tmp_path / 'search'
    wd.mkdir()
    alphas, betas = _arch()
    _save_ckpt(str(wd / 'epoch_2.pth'), *_arch(seed=5))
    _save_ckpt(str(wd / 'epoch_3.pth'), alphas, betas, with_hub=True)
    (wd / 'last_checkpoint').write_text(str(wd / 'epoch_3.pth'))
    return wd, decode_genotype(alphas, betas)


def _build(config):
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    for part in (cfg.model.backbone, cfg.model.decode_head):
        part.norm_cfg = dict(type='BN', requires_grad=True)
    return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('dataset,classes,crop', [
    ('cityscapes', 19, (769, 769)), ('voc', 21, (513, 513)),
    ('ade20k', 150, (513, 513))])
def test_work_dir_checkpoint_to_config(work_dir, tmp_path, capsys, dataset,
                                       classes, crop):
    wd, expected = work_dir
    out = tmp_path / 'cfgs' / f'retrain_{dataset}.py'
    rc = main([str(wd), '--dataset', dataset, '--filter-multiplier', '4',
               '--out', str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    genotype_path = tmp_path / 'cfgs' / f'retrain_{dataset}_genotype.json'
    assert Genotype.load(str(genotype_path)) == expected
    assert expected.describe() in printed  # blocks and path as strides
    assert 'path (strides):' in printed
    cfg, model = _build(str(out))
    assert cfg.model.backbone.genotype == str(genotype_path)
    assert cfg.model.decode_head.num_classes == classes
    assert cfg.crop_size == crop
    assert cfg.custom_imports.imports == ['mmseg_autodeeplab']
    assert model.backbone.genotype == expected
    assert model.backbone.out_channels == [
        cfg.model.decode_head.c1_in_channels,
        cfg.model.decode_head.in_channels]
    crops = [t['crop_size'] for t in cfg.train_pipeline
             if t['type'] == 'RandomCrop']
    assert crops == [crop]
    dataset_cfg = cfg.train_dataloader.dataset
    for part in dataset_cfg.get('datasets', [dataset_cfg]):
        assert part.pipeline[3]['crop_size'] == crop
    # the built model runs (tiny input)
    model.eval()
    with torch.no_grad():
        logits = model.decode_head(model.extract_feat(torch.rand(1, 3, 33,
                                                                 33)))
    assert logits.shape[1] == classes
    assert not [p for p in os.listdir(tmp_path / 'cfgs') if '.tmp' in p]


def test_genotype_json_is_preferred_and_genotype_out(work_dir, tmp_path):
    wd, _ = work_dir
    paper = Genotype.load(PAPER_JSON)
    paper.save(str(wd / 'genotype.json'))
    out, gout = tmp_path / 'a.py', tmp_path / 'g' / 'x.json'
    assert main([str(wd), '--out', str(out), '--genotype-out',
                 str(gout)]) == 0
    assert Genotype.load(str(gout)) == paper
    cfg, model = _build(str(out))
    assert cfg.model.backbone.filter_multiplier == 20
    assert sum(p.numel() for p in model.parameters()) == 10147427  # -S


def test_checkpoint_path_and_latest_without_marker(work_dir, tmp_path):
    wd, expected = work_dir
    os.remove(wd / 'last_checkpoint')
    _save_ckpt(str(wd / 'epoch_10.pth'), *_arch(seed=7))
    assert main([str(wd), '--out', str(tmp_path / 'a.py')]) == 0
    assert Genotype.load(str(tmp_path / 'a_genotype.json')) == \
        decode_genotype(*_arch(seed=7))
    ckpt = str(wd / 'epoch_3.pth')
    assert main([ckpt, '--out', str(tmp_path / 'b.py')]) == 0
    assert Genotype.load(str(tmp_path / 'b_genotype.json')) == expected


def test_budgeted_genotype_prints_its_cost_and_target(tmp_path, capsys):
    import json
    data = json.loads(open(PAPER_JSON, encoding='utf-8').read())
    data['cost'] = dict(kind='macs', predicted=9.0e6, expected=9.5e6,
                        target=12e6, input_size=[64, 64], table='t.json')
    src = tmp_path / 'budget' / 'genotype.json'
    src.parent.mkdir()
    src.write_text(json.dumps(data))
    assert main([str(src.parent), '--out', str(tmp_path / 'a.py')]) == 0
    out = capsys.readouterr().out
    assert ('cost:     9.00M multiply-adds at 64x64; target 12.00M '
            'multiply-adds (ratio 0.75)') in out
    data['cost'].update(kind='latency', predicted=0.0042, target=0.005)
    src.write_text(json.dumps(data))
    assert main([str(src), '--out', str(tmp_path / 'c.py')]) == 0
    assert 'cost:     4.2 ms at 64x64; target 5 ms (ratio 0.84)' in \
        capsys.readouterr().out
    assert main([PAPER_JSON, '--out', str(tmp_path / 'b.py')]) == 0
    assert 'cost:' not in capsys.readouterr().out  # nothing recorded
    # A hand-edited, malformed record is informational: skipped, files kept.
    for bad in ('12M', dict(kind='macs'), dict(predicted='x', target=1)):
        data['cost'] = bad
        src.write_text(json.dumps(data))
        assert main([str(src), '--out', str(tmp_path / 'd.py')]) == 0
        assert 'cost:' not in capsys.readouterr().out
        assert (tmp_path / 'd.py').is_file()


def test_budgeted_genotype_file_is_read_once(tmp_path, capsys,
                                             monkeypatch):
    import builtins
    import json
    data = json.loads(open(PAPER_JSON, encoding='utf-8').read())
    data['cost'] = dict(kind='macs', predicted=9.0e6, target=12e6)
    src = tmp_path / 'genotype.json'
    src.write_text(json.dumps(data))
    opened, real_open = [], builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(os.fspath(file) if isinstance(file, (str, os.PathLike))
                      else file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, 'open', counting_open)
    assert main([str(src), '--out', str(tmp_path / 'a.py')]) == 0
    assert opened.count(str(src)) == 1  # the genotype and its cost record
    assert 'cost:     9.00M multiply-adds' in capsys.readouterr().out


def _error(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse usage errors
        rc = e.code
    return rc, capsys.readouterr().err


def test_errors_are_one_line_and_write_nothing(tmp_path, capsys, work_dir):
    wd, _ = work_dir
    empty = tmp_path / 'empty'
    empty.mkdir()
    no_arch = _save_ckpt(str(tmp_path / 'weights.pth'))
    only_alpha = _save_ckpt(str(tmp_path / 'alpha.pth'), _arch()[0])
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    bad_shape = _save_ckpt(str(tmp_path / 'shape.pth'), torch.randn(13, 8),
                           torch.randn(12, 4, 3))
    bad_json = tmp_path / 'badwd'
    bad_json.mkdir()
    (bad_json / 'genotype.json').write_text('{"cell": []')
    out_dir = tmp_path / 'out'
    short = tmp_path / 'short.json'
    g = Genotype.load(PAPER_JSON).to_dict()
    g['path'], g['path_strides'] = g['path'][:2], g['path_strides'][:2]
    g['search_space']['num_layers'] = 2
    short.write_text(Genotype.from_dict(g).to_json())
    legacy = tmp_path / 'legacy.pth'  # plain mmengine: pickled HistoryBuffer
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('decode_genotype_legacy')
    hub.update_scalar('train/loss', 1.5)
    torch.save({'state_dict': dict(zip(('backbone.alphas', 'backbone.betas'),
                                       _arch())),
                'message_hub': hub.state_dict()}, str(legacy))
    bad_upper = tmp_path / 'BAD.JSON'
    bad_upper.write_text('{"cell": []')
    cases = [
        ([str(wd), '--dataset', 'bogus'], 'invalid choice'),
        ([str(short)], f'{short}: the genotype has 2 layers'),
        ([str(legacy)], f'cannot read checkpoint: {legacy}: '),
        ([str(bad_upper)], f'{bad_upper}: invalid JSON'),
        ([str(wd), '--genotype-out', str(out_dir / 'c.py')],
         '--genotype-out and --out are the same file'),
        ([str(wd), '--dataset', 'custom'], '--dataset custom needs --classes'),
        ([str(wd), '--classes', 'a', 'b'],
         '--classes is for --dataset custom'),
        ([str(wd), '--dataset', 'custom', '--classes', 'a', 'b',
          '--palette', '1,2,3'], '--palette has 1 colours for 2 classes'),
        ([str(wd), '--dataset', 'custom', '--classes', 'a', 'a'],
         'must be distinct'),
        ([str(wd), '--dataset', 'custom', '--classes', 'a', '--palette',
          '1,2'], 'expected R,G,B'),
        ([str(wd), '--cfg-options', 'model.backbone.genotype.x=1'],
         'cannot apply the options'),
        ([str(tmp_path / 'missing')], 'no such work_dir or checkpoint'),
        ([str(empty)], 'no genotype.json and no checkpoint'),
        ([no_arch], "no 'backbone.alphas'"),
        ([only_alpha], "no 'backbone.betas'"),
        ([str(garbage)], 'cannot read checkpoint'),
        ([bad_shape], 'cannot decode'),
        ([str(bad_json)], 'genotype.json: invalid JSON'),
        ([str(wd), '-F', '0'], 'must be positive'),
    ]
    for argv, message in cases:
        out = out_dir / 'c.py'
        rc, err = _error(argv + ['--out', str(out)], capsys)
        assert rc == 2, argv
        assert err.startswith('error: ') and err.count('\n') == 1, err
        assert message in err, (argv, err)
        assert not out_dir.exists(), argv


def test_cli_script(work_dir, tmp_path):
    wd, expected = work_dir
    out = tmp_path / 'cli.py'
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'decode_genotype.py'),
         str(wd), '--dataset', 'voc', '--out', str(out)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert expected.describe() in proc.stdout
    assert out.is_file()


@pytest.mark.slow
def test_genotype_from_a_short_demo_search_builds(tiny_cityscapes, tiny_cfg,
                                                   tmp_path, capsys):
    from mmengine.runner import Runner
    work_dir = str(tmp_path / 'search')
    runner = Runner.from_cfg(tiny_cfg(tiny_cityscapes, work_dir))
    runner.train()
    out = tmp_path / 'retrain.py'
    for source in (work_dir, osp.join(work_dir, 'epoch_2.pth')):
        assert main([source, '--out', str(out), '-F', '2']) == 0
        cfg, model = _build(str(out))
        assert len(model.backbone.cells) == 3  # the demo searched L=3
        model.train()
        logits = model.decode_head(model.extract_feat(torch.rand(2, 3, 33,
                                                                 33)))
        logits.mean().backward()
    capsys.readouterr()


def test_failed_config_write_leaves_no_genotype(work_dir, tmp_path, capsys):
    wd, _ = work_dir
    blocker = tmp_path / 'afile'
    blocker.write_text('')  # a file where the config's folder should be
    gout = tmp_path / 'g.json'
    rc, err = _error([str(wd), '--out', str(blocker / 'c.py'),
                      '--genotype-out', str(gout)], capsys)
    assert rc == 2 and err.count('\n') == 1
    assert not gout.exists()


# --------------------------------------------------------------------------
# the written config is a small delta over the shipped one
def _load(config):
    from mmengine.config import Config
    return Config.fromfile(str(config))


def test_config_is_a_relative_delta_over_the_shipped_config(tmp_path):
    out = tmp_path / 'a' / 'retrain.py'
    assert main([PAPER_JSON, '-F', '4', '--out', str(out)]) == 0
    text = out.read_text()
    code = [line for line in text.splitlines()
            if line.strip() and not line.startswith('#')]
    assert len(code) <= 8, text  # _base_ + genotype, F and two channels
    base_line = [line for line in code if line.startswith('_base_')][0]
    assert "autodeeplab-s_paper-genotype_8xb2-1.5m_cityscapes-769x769.py" \
        in base_line
    assert "'/" not in text and ' /' not in text, text  # no absolute paths
    assert "'{{ fileDirname }}/retrain_genotype.json'" in text
    cfg = _load(out)
    # everything the shipped config has: checked loops, checkpoint check,
    # best checkpoint on mIoU
    assert cfg.train_cfg.type == 'CheckedIterBasedTrainLoop'
    assert cfg.test_cfg.type == 'CheckedTestLoop'
    assert {'type': 'CheckpointMatchHook'} in cfg.custom_hooks
    assert cfg.default_hooks.checkpoint.save_best == 'mIoU'
    assert cfg.model.backbone.filter_multiplier == 4
    assert (cfg.model.decode_head.in_channels,
            cfg.model.decode_head.c1_in_channels) == (40, 20)
    # the pair moves: copied to another folder at the same depth, the config
    # reads the genotype beside it
    moved = tmp_path / 'b'
    moved.mkdir()
    for name in ('retrain.py', 'retrain_genotype.json'):
        (moved / name).write_text((tmp_path / 'a' / name).read_text())
    assert _load(moved / 'retrain.py').model.backbone.genotype == str(
        moved / 'retrain_genotype.json')


def test_data_root_work_dir_schedule_and_cfg_options(tmp_path):
    out = tmp_path / 'voc.py'
    assert main([PAPER_JSON, '--dataset', 'voc', '-F', '4', '--out', str(out),
                 '--data-root', 'data/my_voc', '--work-dir', 'work_dirs/x',
                 '--max-iters', '1000', '--cfg-options',
                 'train_dataloader.batch_size=4',
                 'default_hooks.checkpoint.interval=500']) == 0
    cfg = _load(out)
    loaders = [cfg.val_dataloader, cfg.test_dataloader]
    datasets = list(cfg.train_dataloader.dataset.datasets) + [
        d.dataset for d in loaders]
    assert len(datasets) == 4  # VOC: train.txt + aug.txt, val, test
    assert {d.data_root for d in datasets} == {'data/my_voc'}
    for d in cfg.train_dataloader.dataset.datasets:  # the 513 pipeline kept
        assert d.pipeline == cfg.train_pipeline
    assert cfg.work_dir == 'work_dirs/x'
    assert cfg.train_cfg.max_iters == 1000
    assert cfg.param_scheduler[0].end == 1000
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.default_hooks.checkpoint.interval == 500
    assert cfg.default_hooks.checkpoint.save_best == 'mIoU'


def test_uppercase_json_is_a_genotype(tmp_path):
    upper = tmp_path / 'PAPER.JSON'
    upper.write_text(open(PAPER_JSON).read())
    assert main([str(upper), '--out', str(tmp_path / 'c.py')]) == 0
    assert Genotype.load(str(tmp_path / 'c_genotype.json')) == \
        Genotype.load(PAPER_JSON)


def _train_two_iters(config, work_dir):
    """mmengine Runner on the config as written (what mim train runs)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_custom_dataset_decodes_and_trains(tmp_path):
    root = make_custom_dataset(str(tmp_path / 'mine'))
    out = tmp_path / 'cfg' / 'mine.py'
    assert main([PAPER_JSON, '--dataset', 'custom', '-F', '2', '--out',
                 str(out), '--classes', 'bg', 'thing', 'stuff', '--palette',
                 '0,0,0', '255,0,0', '0,255,0', '--data-root', root,
                 '--smoke']) == 0
    cfg = _load(out)
    assert cfg.model.decode_head.num_classes == 3
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert ds.type == 'BaseSegDataset' and ds.data_root == root
        assert tuple(ds.metainfo.classes) == ('bg', 'thing', 'stuff')
        assert ds.metainfo.palette == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
        assert cfg[loader].num_workers == 0
    assert cfg.train_cfg.max_iters == 2
    runner = _train_two_iters(out, tmp_path / 'work')
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    assert runner.val_loop.dataloader.dataset.metainfo['classes'] == (
        'bg', 'thing', 'stuff')
    metrics = runner.message_hub.get_scalar('val/mIoU')
    assert 0 <= metrics.current() <= 100


def test_search_config_for_own_data_builds(tmp_path):
    """The documented way to search on one's own data: a small delta over
    the custom search config (docs/custom_dataset.md)."""
    from mmseg_autodeeplab.cli.search import load_search_cfg
    from mmseg.registry import DATASETS
    root = make_custom_dataset(str(tmp_path / 'mine'), num_train=6)
    mine = tmp_path / 'search_mine.py'
    mine.write_text(CUSTOM_SEARCH_DELTA.format(
        base=osp.join(REPO, 'configs', 'autodeeplab_search',
                      'autodeeplab-search_f8-l12_1xb2-40e_custom-321x321.py'),
        root=root))
    from mmengine.registry import DefaultScope
    cfg = load_search_cfg(str(mine), work_dir=str(tmp_path / 'w'))
    assert cfg.model.decode_head.num_classes == 3
    with DefaultScope.overwrite_default_scope('mmseg'):
        train = DATASETS.build(cfg.train_dataloader.dataset)
        val = DATASETS.build(cfg.val_dataloader.dataset)
        assert len(train) == 3  # trainA: half of 6
        assert train.metainfo['classes'] == ('bg', 'thing', 'stuff')
        assert len(val) == 2
        sample = train[0]
        labels = sample['data_samples'].gt_sem_seg.data.unique().tolist()
        assert set(labels) <= {0, 1, 2, 255}
        assert tuple(sample['inputs'].shape[1:]) == (321, 321)  # paper crop


#: what docs/custom_dataset.md tells users to write
CUSTOM_SEARCH_DELTA = '''
_base_ = '{base}'
data_root = '{root}'
metainfo = dict(classes=('bg', 'thing', 'stuff'))
train_dataloader = dict(
    dataset=dict(dataset=dict(data_root=data_root, metainfo=metainfo)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
model = dict(decode_head=dict(num_classes=3))
'''


@pytest.mark.slow
def test_search_on_own_data_then_decode_and_train(tmp_path, capsys):
    """Search (tiny) on a custom-layout dataset -> decode -> train."""
    from mmengine.runner import Runner

    from mmseg_autodeeplab.cli.search import load_search_cfg
    import importlib.util
    spec = importlib.util.spec_from_file_location(  # not test_models' one
        '_tests_conftest', osp.join(REPO, 'tests', 'conftest.py'))
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    tiny_search_options = shared.tiny_search_options
    root = make_custom_dataset(str(tmp_path / 'mine'), num_train=8,
                               size=(64, 128))
    mine = tmp_path / 'search_mine.py'
    mine.write_text(CUSTOM_SEARCH_DELTA.format(
        base=osp.join(REPO, 'configs', 'autodeeplab_search',
                      'autodeeplab-search_f8-l12_1xb2-40e_custom-321x321.py'),
        root=root))
    work_dir = str(tmp_path / 'search')
    opts = tiny_search_options(root, work_dir)
    opts.update({
        'model.data_preprocessor.size': (64, 64),
        'train_dataloader.dataset.dataset.pipeline.2.scale': (128, 64),
        'train_dataloader.dataset.dataset.pipeline.3.crop_size': (64, 64),
        'val_dataloader.dataset.pipeline.1.scale': (128, 64),
        'test_dataloader.dataset.pipeline.1.scale': (128, 64),
        'train_dataloader.num_workers': 0,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
    })
    cfg = load_search_cfg(str(mine), opts, work_dir=work_dir)
    Runner.from_cfg(cfg).train()
    assert osp.isfile(osp.join(work_dir, 'genotype.json'))
    out = tmp_path / 'retrain.py'
    assert main([work_dir, '--dataset', 'custom', '-F', '2', '--out',
                 str(out), '--classes', 'bg', 'thing', 'stuff',
                 '--data-root', root, '--smoke']) == 0
    _train_two_iters(out, tmp_path / 'work')
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    capsys.readouterr()


@pytest.mark.slow
def test_search_decode_mim_train_test_end_to_end(tiny_cityscapes, tiny_cfg,
                                                 tmp_path, capsys):
    """The README's path: search -> decode with --data-root and --smoke ->
    mim train -> mim test -> mmseg's get_flops equivalent and inferencer;
    a wrong checkpoint and a missing data root stop with one line."""
    from mmengine.runner import Runner

    from test_retrain_mim import _mim, parse_miou
    work_dir = str(tmp_path / 'search')
    Runner.from_cfg(tiny_cfg(tiny_cityscapes, work_dir)).train()
    out = str(tmp_path / 'retrain' / 'adl.py')
    assert main([work_dir, '-F', '2', '--data-root', tiny_cityscapes,
                 '--smoke', '--out', out]) == 0
    rc, log = _mim('train', 'mmsegmentation', out, '--work-dir',
                   str(tmp_path / 'train'))
    assert rc == 0, log[-3000:]
    ckpt = str(tmp_path / 'train' / 'iter_2.pth')
    assert osp.isfile(ckpt) and 0 <= parse_miou(log) <= 100
    rc, log = _mim('test', 'mmsegmentation', out, '--checkpoint', ckpt,
                   '--work-dir', str(tmp_path / 'test'))
    assert rc == 0 and 0 <= parse_miou(log) <= 100, log[-3000:]
    # mmseg's APIs on the result, in a process that never imports us
    proc = subprocess.run(
        [sys.executable, '-c', 'import sys\nfrom mmseg.apis import '
         'MMSegInferencer\nr = MMSegInferencer(model=sys.argv[1], '
         'weights=sys.argv[2], device="cpu")(sys.argv[3])\n'
         'print("pred", r["predictions"].shape)', out, ckpt,
         sorted(__import__('glob').glob(osp.join(
             tiny_cityscapes, 'leftImg8bit', 'val', '*', '*.png')))[0]],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0 and 'pred (64, 128)' in proc.stdout, \
        proc.stderr[-2000:]
    # a checkpoint of another F: one line, no evaluation
    other = str(tmp_path / 'retrain' / 'adl4.py')
    assert main([work_dir, '-F', '4', '--data-root', tiny_cityscapes,
                 '--smoke', '--out', other]) == 0
    rc, log = _mim('test', 'mmsegmentation', other, '--checkpoint', ckpt,
                   '--work-dir', str(tmp_path / 'test4'))
    assert rc != 0 and 'mIoU:' not in log
    assert re.search(r'^error: checkpoint \S+iter_2\.pth does not match',
                     log, re.M), log[-2000:]
    # a missing data root: one line before any work
    missing = str(tmp_path / 'retrain' / 'missing.py')
    assert main([work_dir, '-F', '2', '--data-root',
                 str(tmp_path / 'nowhere'), '--smoke', '--out',
                 missing]) == 0
    rc, log = _mim('train', 'mmsegmentation', missing, '--work-dir',
                   str(tmp_path / 'bad'))
    assert rc != 0
    assert re.search(r'^error: train_dataloader\.dataset \(CityscapesDataset'
                     r'\): data_root \S+nowhere\S* does not exist', log,
                     re.M), log[-2000:]
    capsys.readouterr()


@pytest.mark.parametrize('dataset', ['cityscapes', 'voc', 'ade20k',
                                     'custom'])
def test_smoke_shrinks_every_pipeline_and_loader(dataset, tmp_path):
    out = tmp_path / f'{dataset}.py'
    extra = ['--classes', 'a', 'b'] if dataset == 'custom' else []
    assert main([PAPER_JSON, '--dataset', dataset, '-F', '2', '--smoke',
                 '--out', str(out)] + extra) == 0
    cfg = _load(out)
    assert tuple(cfg.model.data_preprocessor.size) == (64, 64)
    assert cfg.train_cfg.max_iters == 2 and cfg.train_cfg.val_interval == 2
    assert cfg.param_scheduler[0].end == 2
    leaves = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].num_workers == 0
        assert cfg[loader].persistent_workers is False
        ds = cfg[loader].dataset
        leaves += list(ds.get('datasets', [ds]))
    for leaf in leaves:
        for step in leaf.pipeline:
            if step.type == 'RandomCrop':
                assert tuple(step.crop_size) == (64, 64)
            elif step.type in ('Resize', 'RandomResize'):
                assert tuple(step.scale) == (128, 64)
            elif step.type == 'Pad':
                assert tuple(step.size) == (64, 64)
