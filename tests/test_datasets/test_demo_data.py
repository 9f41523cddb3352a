"""Tests for the synthetic demo dataset generator."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mmseg_autodeeplab.datasets import demo_data as dd  # noqa: E402

SMALL = dict(num_train=6, num_val=3, seed=7)
SMALL_SIZE = {'cityscapes': (64, 128), 'voc': (64, 80), 'ade20k': (64, 80)}


def _read_label(path):
    # Same decoder as mmseg's LoadAnnotations (pillow, 'unchanged').
    return np.array(Image.open(path))


def _install_mmcv_ext_standin():
    """Make ``mmseg.datasets`` importable on mmcv-lite."""
    from mmseg_autodeeplab.compat import apply_compat
    apply_compat()


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    """One small dataset per layout, built through the atomic entry point."""
    base = tmp_path_factory.mktemp('demo')
    return {
        layout:
        dd.ensure_demo_data(layout,
                            base / layout,
                            size=SMALL_SIZE[layout],
                            **SMALL)
        for layout in dd.LAYOUTS
    }


@pytest.fixture(scope='module')
def mmseg_pipeline():
    _install_mmcv_ext_standin()
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
    return lambda: [LoadImageFromFile(), LoadAnnotations(), PackSegInputs()]


def _label_files(info):
    root = Path(info['root'])
    if info['layout'] == 'cityscapes':
        return sorted(root.glob('gtFine/*/*/*_gtFine_labelTrainIds.png'))
    if info['layout'] == 'voc':
        return sorted(root.glob('SegmentationClass/*.png'))
    return sorted(root.glob('annotations/*/*.png'))


# ---------------------------------------------------------------- layouts
def test_cityscapes_layout(small):
    root = Path(small['cityscapes']['root'])
    h, w = SMALL_SIZE['cityscapes']
    pat = re.compile(r'^([a-z]+)_(\d{6})_(\d{6})_leftImg8bit\.png$')
    seen = set()
    for split, n in (('train', SMALL['num_train']), ('val', SMALL['num_val'])):
        imgs = sorted(root.glob(f'leftImg8bit/{split}/*/*.png'))
        assert len(imgs) == n
        cities = {p.parent.name for p in imgs}
        assert 2 <= len(cities) <= 3
        assert not cities & seen, 'a city appears in two splits'
        seen |= cities
        for p in imgs:
            m = pat.match(p.name)
            assert m and m.group(1) == p.parent.name
            stem = p.name[:-len('_leftImg8bit.png')]
            ann = root / 'gtFine' / split / p.parent.name / \
                f'{stem}_gtFine_labelTrainIds.png'
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            assert img.shape == (h, w, 3) and img.dtype == np.uint8
            lbl = _read_label(ann)
            assert lbl.shape == (h, w) and lbl.dtype == np.uint8
    assert len(list(root.glob('gtFine/*/*/*.png'))) == 9


@pytest.mark.parametrize('layout', dd.LAYOUTS)
def test_label_values_follow_the_role_table(small, layout):
    values = set()
    for p in _label_files(small[layout]):
        values |= set(np.unique(_read_label(p)).tolist())
    allowed = set(dd.LABELS[layout]) | ({255} if layout == 'voc' else set())
    assert values <= allowed
    assert len(values - {255}) >= 8
    assert len(set(dd.LABELS[layout])) == len(dd.ROLES) == 12
    if layout == 'cityscapes':
        assert max(dd.LABELS[layout]) < len(dd.CITYSCAPES_CLASSES)
    if layout == 'ade20k':
        assert set(dd.LABELS[layout]) == set(dd.ADE20K_USED_CLASSES)


def test_voc_layout_and_labels(small):
    root = Path(small['voc']['root'])
    h, w = SMALL_SIZE['voc']
    sets = root / 'ImageSets' / 'Segmentation'
    lists = {
        s: (sets / f'{s}.txt').read_text().split()
        for s in ('train', 'val', 'aug', 'trainval')
    }
    n_aug = SMALL['num_train'] // 2
    assert len(lists['train']) == SMALL['num_train']
    assert len(lists['val']) == SMALL['num_val']
    assert len(lists['aug']) == SMALL['num_train'] + n_aug
    assert set(lists['train']) <= set(lists['aug'])
    assert not set(lists['val']) & set(lists['aug'])
    assert lists['trainval'] == lists['train'] + lists['val']
    assert all(
        re.fullmatch(r'20(0[7-9]|1[01])_\d{6}', n)
        for n in lists['train'] + lists['val'] + lists['aug'])
    assert len(list(root.glob('JPEGImages/*.jpg'))) == len(
        set(lists['train'] + lists['val'] + lists['aug']))
    assert len(list(root.glob('SegmentationClass/*.png'))) == 9
    assert len(list(root.glob('SegmentationClassAug/*.png'))) == len(
        lists['aug'])
    palette = dd.voc_palette()
    assert tuple(palette[1]) == (128, 0, 0)
    assert tuple(palette[15]) == (192, 128, 128)
    assert tuple(palette[255]) == (224, 224, 192)
    for name in lists['train'] + lists['val']:
        im = Image.open(root / 'SegmentationClass' / f'{name}.png')
        assert im.mode == 'P'
        assert np.array_equal(
            np.frombuffer(bytes(im.getpalette()[:768]), np.uint8),
            palette.reshape(-1))
        lbl = np.array(im)
        assert lbl.shape == (h, w)
        vals = set(np.unique(lbl).tolist())
        assert vals <= set(range(21)) | {255}
        assert 255 in vals and len(vals) >= 3, 'things with void borders'
        assert cv2.imread(str(root / 'JPEGImages' /
                              f'{name}.jpg')).shape == (h, w, 3)
    for name in lists['aug']:
        im = Image.open(root / 'SegmentationClassAug' / f'{name}.png')
        assert im.mode == 'L'
        aug = np.array(im)
        assert set(np.unique(aug).tolist()) <= set(range(21))
        voc_png = root / 'SegmentationClass' / f'{name}.png'
        if voc_png.exists():  # same labels, minus the void border band
            voc = np.array(Image.open(voc_png))
            keep = voc != 255
            assert np.array_equal(aug[keep], voc[keep])
            assert keep.mean() > 0.7


def test_ade20k_layout(small):
    root = Path(small['ade20k']['root'])
    for folder, tag, n in (('training', 'train', SMALL['num_train']),
                           ('validation', 'val', SMALL['num_val'])):
        imgs = sorted((root / 'images' / folder).iterdir())
        anns = sorted((root / 'annotations' / folder).iterdir())
        assert [p.name for p in imgs
                ] == [f'ADE_{tag}_{i:08d}.jpg' for i in range(1, n + 1)]
        assert [p.stem for p in anns] == [p.stem for p in imgs]


def test_manifest(small):
    for layout, info in small.items():
        data = json.loads((Path(info['root']) / dd.MANIFEST_NAME).read_text())
        assert data['layout'] == layout
        assert data['size'] == list(SMALL_SIZE[layout])
        assert (data['num_train'], data['num_val'],
                data['seed']) == (SMALL['num_train'], SMALL['num_val'],
                                  SMALL['seed'])
        assert data['format_version'] == dd.FORMAT_VERSION


# ------------------------------------------------------- the proxy task
def _scenes(n=60, h=64, w=128):
    return [dd.draw_scene(np.random.default_rng([5, i]), h, w)
            for i in range(n)]


def _high_pass_energy(img, mask):
    """Mean |Laplacian| of the grey image inside ``mask`` (eroded)."""
    grey = img.astype(np.float32).mean(-1)
    lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5))) > 0
    return lap[inner]


def test_stuff_pairs_differ_only_in_texture_frequency():
    scenes = _scenes()
    colour = {r: [] for r in range(6)}
    energy = {r: [] for r in range(6)}
    for img, roles in scenes:
        for r in range(6):
            m = roles == r
            if m.sum() > 200:
                colour[r].append(img[m].astype(np.float32).mean(0))
                energy[r].append(_high_pass_energy(img, m).mean())
    for fam in range(3):
        fine, coarse = 2 * fam, 2 * fam + 1
        assert len(colour[fine]) >= 3 and len(colour[coarse]) >= 3
        gap = np.abs(np.mean(colour[fine], 0) - np.mean(colour[coarse], 0))
        assert gap.max() < 10, 'a stuff pair must not differ in colour'
        # ... but the fine texture has several times the high-pass energy
        assert min(energy[fine]) > 1.5 * max(energy[coarse])
    # the three families do differ in colour
    means = [np.mean(colour[2 * f] + colour[2 * f + 1], 0) for f in range(3)]
    assert min(np.abs(means[a] - means[b]).max()
               for a, b in ((0, 1), (0, 2), (1, 2))) > 20


def test_thing_class_is_shape_times_surroundings():
    scenes = _scenes()
    colours = {r: [] for r in range(6, 12)}
    agree = []
    for img, roles in scenes:
        things = (roles >= 6).astype(np.uint8)
        n, comp = cv2.connectedComponents(things)
        for k in range(1, n):
            m = comp == k
            ids = np.unique(roles[m])
            if len(ids) != 1 or m.sum() < 60:
                continue  # overlapping things
            role = int(ids[0])
            colours[role].append(img[m].astype(np.float32).mean(0))
            ring = (cv2.dilate(m.astype(np.uint8), np.ones((5, 5))) > 0) & \
                ~m & (roles < 6)
            if ring.sum() > 20:
                fams = roles[ring] // 2
                fam = np.bincount(fams).argmax()
                agree.append((role - 6) % 3 == fam)
    # the surrounding family decides the class ...
    assert len(agree) > 50 and np.mean(agree) > 0.9
    # ... not the thing's own colour: all thing classes look alike
    palette = np.array(dd.THING_COLOURS, np.float32)
    for role, cols in colours.items():
        nearest = {int(np.abs(palette - c).sum(1).argmin()) for c in cols}
        assert len(nearest) >= 3, (dd.ROLES[role], nearest)


def test_pixel_colour_alone_does_not_solve_it():
    scenes = _scenes(30)
    train, val = scenes[:20], scenes[20:]
    xt = np.concatenate([i.reshape(-1, 3) for i, _ in train]).astype(float)
    yt = np.concatenate([r.reshape(-1) for _, r in train])
    classes = np.unique(yt)
    means = np.stack([xt[yt == c].mean(0) for c in classes])
    xv = np.concatenate([i.reshape(-1, 3) for i, _ in val]).astype(float)
    yv = np.concatenate([r.reshape(-1) for _, r in val])
    pred = classes[((xv[:, None] - means[None])**2).sum(-1).argmin(1)]
    acc = float((pred == yv).mean())
    assert 1 / len(classes) < acc < 0.6, acc


# ------------------------------------------------------------ determinism
def _labels(info):
    return [_read_label(p) for p in _label_files(info)]


@pytest.mark.parametrize('layout', dd.LAYOUTS)
def test_determinism(small, tmp_path, layout):
    ref = small[layout]
    same = dd.ensure_demo_data(layout,
                               tmp_path / 'same',
                               size=SMALL_SIZE[layout],
                               **SMALL)
    a, b = _labels(ref), _labels(same)
    assert len(a) == len(b) == 9
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    img_a = sorted(p for p in Path(ref['root']).rglob('*')
                   if p.suffix in ('.jpg', '.png'))
    img_b = [Path(same['root']) / p.relative_to(ref['root']) for p in img_a]
    assert img_a and all(x.read_bytes() == y.read_bytes()
                         for x, y in zip(img_a, img_b))

    other = dd.ensure_demo_data(layout,
                                tmp_path / 'other',
                                size=SMALL_SIZE[layout],
                                **dict(SMALL, seed=SMALL['seed'] + 1))
    c = _labels(other)
    assert sum(not np.array_equal(x, y) for x, y in zip(a, c)) >= 8

    # Image i depends only on (seed, split, i), not on the dataset size.
    fewer = dd.ensure_demo_data(layout,
                                tmp_path / 'fewer',
                                size=SMALL_SIZE[layout],
                                **dict(SMALL, num_train=2))
    for p in _label_files(fewer):
        q = Path(ref['root']) / p.relative_to(fewer['root'])
        assert np.array_equal(_read_label(p), _read_label(q))


# ------------------------------------------------------ mmseg integration
def _check_sample(ds, idx, allowed):
    out = ds[idx]
    info = ds.get_data_info(idx)
    img = out['inputs']
    gt = out['data_samples'].gt_sem_seg.data
    assert img.ndim == 3 and img.shape[0] == 3
    assert gt.shape == (1, ) + tuple(img.shape[1:])
    vals = set(np.unique(gt.numpy()).tolist())
    assert vals <= allowed
    return gt.numpy()[0], _read_label(info['seg_map_path'])


def test_cityscapes_loads_in_mmseg(small, mmseg_pipeline):
    from mmseg.datasets import CityscapesDataset
    info = small['cityscapes']
    for split, n in (('train', SMALL['num_train']), ('val', SMALL['num_val'])):
        ds = CityscapesDataset(
            data_root=info['root'],
            data_prefix=dict(img_path=f'leftImg8bit/{split}',
                             seg_map_path=f'gtFine/{split}'),
            pipeline=mmseg_pipeline())
        assert len(ds) == n
        assert ds.metainfo['classes'] == dd.CITYSCAPES_CLASSES
        gt, raw = _check_sample(ds, 0, set(range(19)) | {255})
        assert np.array_equal(gt, raw)


def test_voc_loads_in_mmseg(small, mmseg_pipeline):
    from mmseg.datasets import PascalVOCDataset
    info = small['voc']
    meta_palette = np.array(PascalVOCDataset.METAINFO['palette'], np.uint8)
    assert np.array_equal(dd.voc_palette()[:21], meta_palette)
    assert PascalVOCDataset.METAINFO['classes'] == dd.VOC_CLASSES
    expected = {
        'train': SMALL['num_train'],
        'val': SMALL['num_val'],
        'aug': SMALL['num_train'] + SMALL['num_train'] // 2
    }
    for split, n in expected.items():
        seg = 'SegmentationClassAug' if split == 'aug' else \
            'SegmentationClass'
        ds = PascalVOCDataset(data_root=info['root'],
                              ann_file=f'ImageSets/Segmentation/{split}.txt',
                              data_prefix=dict(img_path='JPEGImages',
                                               seg_map_path=seg),
                              pipeline=mmseg_pipeline())
        assert len(ds) == n
        allowed = set(range(21)) | ({255} if split != 'aug' else set())
        gt, raw = _check_sample(ds, len(ds) - 1, allowed)
        assert np.array_equal(gt, raw)  # palette indices, not RGB


def test_voc_aug_config_builds(small):
    """The stock pascal_voc12_aug.py train set works on the demo data."""
    _install_mmcv_ext_standin()
    import mmseg
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    import mmseg.datasets  # noqa: F401  (registers the dataset classes)
    cfg_path = Path(mmseg.__file__).parent / '.mim' / 'configs' / \
        '_base_' / 'datasets' / 'pascal_voc12_aug.py'
    if not cfg_path.is_file():
        pytest.skip('mmseg configs are not installed')
    cfg = Config.fromfile(str(cfg_path))
    ds_cfg = cfg.train_dataloader.dataset
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    for sub in ds_cfg.datasets:
        sub.data_root = small['voc']['root']
        sub.pipeline = pipeline
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(ds_cfg)
        sample = ds[len(ds) - 1]
    n = SMALL['num_train']
    assert len(ds) == n + n + n // 2
    assert sample['data_samples'].gt_sem_seg.data.max() <= 20


def test_ade20k_loads_in_mmseg(small, mmseg_pipeline):
    from mmseg.datasets import ADE20KDataset
    classes = ADE20KDataset.METAINFO['classes']
    for value, name in dd.ADE20K_USED_CLASSES.items():
        assert classes[value - 1] == name
    info = small['ade20k']
    allowed = {v - 1 for v in dd.ADE20K_USED_CLASSES} | {255}
    for split, n in (('train', SMALL['num_train']), ('val', SMALL['num_val'])):
        folder = 'training' if split == 'train' else 'validation'
        ds = ADE20KDataset(data_root=info['root'],
                           data_prefix=dict(
                               img_path=f'images/{folder}',
                               seg_map_path=f'annotations/{folder}'),
                           pipeline=mmseg_pipeline())
        assert len(ds) == n and ds.reduce_zero_label
        for i in range(n):
            gt, raw = _check_sample(ds, i, allowed)
            expect = raw.astype(np.int32) - 1
            expect[raw == 0] = 255
            assert np.array_equal(gt, expect)


def test_default_generation_is_fast(tmp_path):
    start = time.perf_counter()
    info = dd.ensure_demo_data('cityscapes', tmp_path / 'cs')
    assert time.perf_counter() - start < 10
    assert info['created'] and info['size'] == list(
        dd.DEFAULTS['cityscapes']['size'])


# ---------------------------------------------------------------- CLI
def _small_args(out, *extra):
    return [
        '--out',
        str(out), '--num-train', '2', '--num-val', '1', '--size', '40x48',
        *extra
    ]


def test_cli_creates_skips_and_forces(tmp_path, capsys):
    out = tmp_path / 'cs'
    assert dd.main(_small_args(out)) == 0
    msg = capsys.readouterr().out
    assert 'wrote' in msg and str(out) in msg and msg.count('\n') == 1
    manifest = out / dd.MANIFEST_NAME
    stamp = manifest.stat().st_mtime_ns

    assert dd.main(_small_args(out)) == 0
    assert 'skipped' in capsys.readouterr().out
    assert manifest.stat().st_mtime_ns == stamp

    assert dd.main(_small_args(out, '--force')) == 0
    assert 'wrote' in capsys.readouterr().out
    assert len(list(out.glob('leftImg8bit/*/*/*.png'))) == 3

    # Different parameters rebuild the folder in place.
    assert dd.main(_small_args(out, '--seed', '5')) == 0
    assert json.loads(manifest.read_text())['seed'] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cs']


@pytest.mark.parametrize('layout', ['voc', 'ade20k'])
def test_cli_other_layouts(tmp_path, capsys, layout):
    out = tmp_path / layout
    assert dd.main(_small_args(out, '--layout', layout)) == 0
    assert layout in capsys.readouterr().out
    assert json.loads((out / dd.MANIFEST_NAME).read_text())['layout'] == \
        layout


@pytest.mark.parametrize(
    'argv', [['--size', '16x64'], ['--size', '64x31'], ['--size', 'abc'],
             ['--size', '64x'], ['--size', '0x0'], ['--num-train', '0'],
             ['--num-val', '-3'], ['--num-train', 'many'], ['--seed', '-1'],
             ['--layout', 'coco']])
def test_cli_bad_arguments(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        dd.main(['--out', str(tmp_path / 'x'), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error:')
    assert not (tmp_path / 'x').exists()


def test_refuses_foreign_folder(tmp_path, capsys):
    out = tmp_path / 'mine'
    out.mkdir()
    (out / 'keep.txt').write_text('precious')
    for extra in ((), ('--force', )):
        with pytest.raises(SystemExit) as exc:
            dd.main(_small_args(out, *extra))
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and err.startswith('error:')
        assert 'refusing' in err
    assert (out / 'keep.txt').read_text() == 'precious'
    assert sorted(p.name for p in out.iterdir()) == ['keep.txt']

    afile = tmp_path / 'afile'
    afile.write_text('x')
    with pytest.raises(SystemExit):
        dd.main(_small_args(afile))
    assert afile.read_text() == 'x'


def test_empty_target_folder_is_filled(tmp_path):
    (tmp_path / 'empty').mkdir()
    assert dd.main(_small_args(tmp_path / 'empty')) == 0
    assert (tmp_path / 'empty' / dd.MANIFEST_NAME).is_file()


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    real = dd._MAKERS['cityscapes']

    def crashing(out_dir, **kwargs):
        real(out_dir, **kwargs)  # half the work is on disk already
        raise KeyboardInterrupt

    monkeypatch.setitem(dd._MAKERS, 'cityscapes', crashing)
    target = tmp_path / 'cs'
    with pytest.raises(KeyboardInterrupt):
        dd.ensure_demo_data('cityscapes', target, 2, 1, (40, 48))
    assert list(tmp_path.iterdir()) == []

    # A failed rebuild keeps the previous complete dataset untouched.
    monkeypatch.setitem(dd._MAKERS, 'cityscapes', real)
    dd.ensure_demo_data('cityscapes', target, 2, 1, (40, 48))
    before = (target / dd.MANIFEST_NAME).read_text()
    monkeypatch.setitem(dd._MAKERS, 'cityscapes', crashing)
    with pytest.raises(KeyboardInterrupt):
        dd.ensure_demo_data('cityscapes', target, 2, 1, (40, 48), force=True)
    assert (target / dd.MANIFEST_NAME).read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ['cs']


def test_api_validates_parameters(tmp_path):
    for kwargs in (dict(num_train=0), dict(num_val=1.5), dict(size=(31, 64)),
                   dict(size=(64, )), dict(seed=-1), dict(num_train=True)):
        with pytest.raises(dd.DemoDataError):
            dd.make_cityscapes(tmp_path / 'x', **kwargs)
    with pytest.raises(dd.DemoDataError):
        dd.ensure_demo_data('coco', tmp_path / 'y')
    assert dd.parse_size('128x256') == (128, 256)
    assert not list(tmp_path.iterdir())


def test_tool_script_runs(tmp_path):
    out = tmp_path / 'ade'
    proc = subprocess.run([
        sys.executable,
        str(REPO / 'tools' / 'make_demo_data.py'),
        *_small_args(out, '--layout', 'ade20k')
    ],
                          cwd=str(tmp_path),
                          capture_output=True,
                          text=True,
                          timeout=120,
                          env=dict(os.environ, PYTHONPATH=''))
    assert proc.returncode == 0, proc.stderr
    assert 'wrote' in proc.stdout
    assert len(list(out.glob('images/training/*.jpg'))) == 2
