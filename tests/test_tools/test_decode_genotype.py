"""tools/decode_genotype.py: search output -> genotype JSON + config."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

import mmseg_autodeeplab  # noqa: F401
from mmseg_autodeeplab.apis.decode_genotype import main
from mmseg_autodeeplab.models.backbones import autodeeplab_net  # noqa: F401
from mmseg_autodeeplab.models.decode_heads import \
    autodeeplab_head  # noqa: F401
from mmseg_autodeeplab.search_space import (Genotype, decode_genotype,
                                            num_edges)

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
    ckpt = {'meta': {'epoch': 3, 'iter': 30, 'seed': 0},
            'state_dict': state}
    if with_hub:  # what mmengine's Runner puts in every checkpoint
        from mmengine.logging import MessageHub
        hub = MessageHub.get_instance('decode_genotype_test')
        hub.update_scalar('train/loss', 1.5)
        ckpt['message_hub'] = hub.state_dict()
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
    cases = [
        ([str(wd), '--dataset', 'bogus'], 'invalid choice'),
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
