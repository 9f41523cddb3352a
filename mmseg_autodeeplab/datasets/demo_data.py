"""A parametric proxy task in real on-disk dataset layouts.

Every image is a few large textured regions ("stuff") with shapes on top
("things"), drawn so that a segmentation network needs BOTH:

* fine detail: stuff classes come in pairs with the same colour statistics,
  told apart only by the spatial frequency of their texture (a grating of
  period ~3 px vs ~8 px);
* wide context: things all look alike (one shared palette, no texture); a
  thing's class is its shape (disk or box) crossed with the colour family
  of the region around it, so its interior pixels are decided by what lies
  several pixels away.

One set of roles (:data:`ROLES`) is drawn for all layouts; each layout maps
the roles to its own label values: ``cityscapes`` (``CityscapesDataset``,
train ids), ``voc`` (``PascalVOCDataset``: palette ``SegmentationClass``
with a 255 band on thing outlines, plus ``SegmentationClassAug`` and
``aug.txt``) and ``ade20k`` (``ADE20KDataset``, 1..150, 0 = other).

Image ``i`` of a split comes from its own generator seeded by
``(seed, layout, split, i)``: byte-for-byte reproducible and independent of
how many other images are requested. Only numpy, OpenCV and Pillow are used.
Command line: ``python tools/make_demo_data.py --layout voc --seed 3``.
"""
import argparse
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

FORMAT_VERSION = 2  # bump when the drawn content changes (cache key)
MANIFEST_NAME = 'demo_data.json'
LAYOUTS = ('cityscapes', 'voc', 'ade20k')
MIN_SIDE, MAX_SIDE, MAX_COUNT = 32, 4096, 100000
DEFAULTS = {
    'cityscapes': dict(num_train=64, num_val=16, size=(64, 128),
                       out='data/demo_cityscapes'),
    'voc': dict(num_train=24, num_val=8, size=(64, 80), out='data/demo_voc'),
    'ade20k': dict(num_train=24, num_val=8, size=(64, 80),
                   out='data/demo_ade20k'),
}
CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation', 'terrain',
                      'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle')
VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle',
               'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog',
               'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')

# --------------------------------------------------------------------------
# The proxy task as data. Stuff role (family f, texture t): colour family f,
# texture period FINE or COARSE. Thing role (shape s, family f): shape s on
# a region of family f. Things share one palette, whatever their class.
FAMILIES = ((100, 100, 150), (165, 120, 75), (80, 150, 80))  # mean RGB
PERIODS = {'fine': (2.6, 3.4), 'coarse': (7.0, 9.0)}  # grating period, px
SHAPES = ('disk', 'box')
THING_COLOURS = ((200, 60, 50), (60, 80, 190), (220, 200, 60), (200, 200, 200))
ROLES = tuple((f'stuff{f}_{t}') for f in range(3) for t in PERIODS) + \
    tuple(f'{s}_on{f}' for s in SHAPES for f in range(3))
# role -> label value, per layout (same order as ROLES)
LABELS = {
    'cityscapes': (0, 1, 2, 3, 8, 9, 11, 12, 7, 13, 14, 15),
    'voc': (0, 11, 18, 9, 16, 20, 15, 8, 12, 7, 6, 19),
    'ade20k': (7, 12, 2, 1, 10, 4, 13, 18, 37, 21, 81, 84),
}
ADE20K_USED_CLASSES = {  # value -> mmseg's class name (index value - 1)
    7: 'road', 12: 'sidewalk', 2: 'building', 1: 'wall', 10: 'grass',
    4: 'floor', 13: 'person', 18: 'plant', 37: 'lamp', 21: 'car', 81: 'bus',
    84: 'truck'}
_SEED_CODE = {'cityscapes': 1, 'voc': 2, 'ade20k': 3, 'train': 0, 'val': 1,
              'aug': 2}


class DemoDataError(ValueError):
    """Invalid request (bad parameters or an unsafe output folder)."""


def draw_scene(rng, h, w, num_regions=(3, 6), num_things=(2, 6)):
    """Draw one ``h x w`` scene from the generator ``rng``; returns the
    ``(h, w, 3)`` uint8 RGB image and the ``(h, w)`` uint8 map of indices
    into :data:`ROLES`. ``num_*``: inclusive ranges."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Layout: a Voronoi partition with wavy borders into a few stuff regions.
    n = int(rng.integers(num_regions[0], num_regions[1] + 1))
    seeds = rng.uniform((0, 0), (h, w), size=(n, 2)).astype(np.float32)
    wave = (np.sin(xx / rng.uniform(6, 12) + rng.uniform(0, 6)) +
            np.sin(yy / rng.uniform(6, 12) + rng.uniform(0, 6))) * h / 16
    dist = (yy[None] - seeds[:, :1, None])**2 + \
        (xx[None] - seeds[:, 1:, None])**2
    region = (np.sqrt(dist) + wave[None] * rng.uniform(
        0.5, 1.5, (n, 1, 1))).argmin(0)
    img = np.zeros((h, w, 3), np.float32)
    roles = np.zeros((h, w), np.uint8)
    family = rng.integers(0, len(FAMILIES), n)
    fine = rng.integers(0, 2, n)
    for k in range(n):
        m = region == k
        period = rng.uniform(*PERIODS['fine' if fine[k] else 'coarse'])
        theta, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        grating = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta))
                         / period + phase)
        colour = np.asarray(FAMILIES[family[k]]) + rng.normal(0, 8, 3)
        img[m] = colour + 35 * grating[m, None]
        roles[m] = 2 * family[k] + (0 if fine[k] else 1)
    # Things: one shared look; the class comes from shape x surroundings.
    scale = min(h, w) / 64
    for _ in range(int(rng.integers(num_things[0], num_things[1] + 1))):
        shape = int(rng.integers(0, 2))
        for _try in range(10):  # a thing lies (almost) inside one region
            r = rng.uniform(5, 13) * scale
            cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
            if shape == 0:
                m = (yy - cy)**2 + (xx - cx)**2 <= r * r
            else:
                m = (abs(yy - cy) <= r * rng.uniform(0.6, 1.0)) & \
                    (abs(xx - cx) <= r)
            home = region[int(cy), int(cx)]
            if (region[m] == home).mean() > 0.95:
                break
        else:
            continue
        colour = np.asarray(THING_COLOURS[int(rng.integers(
            len(THING_COLOURS)))]) + rng.normal(0, 10, 3)
        img[m] = colour
        roles[m] = 6 + 3 * shape + family[home]
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8), roles


def _sample(seed, layout, split, index, h, w):
    rng = np.random.default_rng(
        [int(seed), _SEED_CODE[layout], _SEED_CODE[split], int(index)])
    img, roles = draw_scene(rng, h, w)
    return img, np.asarray(LABELS[layout], np.uint8)[roles], roles


def voc_palette():
    """The standard 256-entry PASCAL VOC colour map, ``(256, 3)`` uint8."""
    i, pal = np.arange(256), np.zeros((256, 3), np.int64)
    for bit in range(8):
        for ch in range(3):
            pal[:, ch] |= ((i >> (3 * bit + ch)) & 1) << (7 - bit)
    return pal.astype(np.uint8)


def _imwrite(path, arr, params=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), arr, list(params)):
        raise OSError(f'could not write {path}')


def _check_params(num_train, num_val, size, seed):
    def is_int(v, low, high=MAX_COUNT):
        return isinstance(v, (int, np.integer)) and not isinstance(
            v, bool) and low <= v <= high
    for name, n in (('num_train', num_train), ('num_val', num_val)):
        if not is_int(n, 1):
            raise DemoDataError(
                f'{name} must be an integer in [1, {MAX_COUNT}], got {n!r}')
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DemoDataError(f'size must be (height, width), got {size!r}')
    if not (is_int(h, MIN_SIDE, MAX_SIDE) and is_int(w, MIN_SIDE, MAX_SIDE)):
        raise DemoDataError(f'size must be between {MIN_SIDE} and {MAX_SIDE} '
                            f'pixels per side, got {h}x{w}')
    if not is_int(seed, 0, 2**63):
        raise DemoDataError(f'seed must be a non-negative integer, '
                            f'got {seed!r}')
    return h, w


def _manifest_key(layout, num_train, num_val, h, w, seed):
    return dict(format_version=FORMAT_VERSION, layout=layout,
                num_train=int(num_train), num_val=int(num_val), size=[h, w],
                seed=int(seed))


def _make(layout, out_dir, num_train, num_val, size, seed, write, **extra):
    """Shared driver: draw every image, ``write`` it, write the manifest."""
    h, w = _check_params(num_train, num_val, size, seed)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    counts = [('train', num_train), ('val', num_val)]
    if 'num_aug' in extra:
        counts.append(('aug', extra['num_aug']))
    for split, n in counts:
        for i in range(n):
            write(root, split, i, *_sample(seed, layout, split, i, h, w))
        splits[split] = n
    manifest = dict(extra, splits=splits,
                    **_manifest_key(layout, num_train, num_val, h, w, seed))
    # written last: its presence marks a complete dataset
    (root / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + '\n')
    return dict(manifest, root=str(root))


def make_cityscapes(out_dir, num_train=64, num_val=16, size=(64, 128),
                    seed=0):
    """Write a Cityscapes-layout dataset (train ids, ``gtFine/*/city/``).

    Writes in place (manifest last); :func:`ensure_demo_data` is the atomic,
    cached build. Args: dataset root, image counts, ``(h, w)``, seed.
    Returns the manifest (``splits``: images per split) plus ``root``.
    """
    def write(root, split, i, img, lbl, roles):
        city = ('aachen', 'bochum', 'bremen') if split == 'train' else \
            ('frankfurt', 'lindau', 'munster')
        city = city[i % 3]
        stem = f'{city}_{i // 3:06d}_000019'
        _imwrite(root / 'leftImg8bit' / split / city /
                 f'{stem}_leftImg8bit.png', img)
        _imwrite(root / 'gtFine' / split / city /
                 f'{stem}_gtFine_labelTrainIds.png', lbl)
    return _make('cityscapes', out_dir, num_train, num_val, size, seed, write)


def make_voc(out_dir, num_train=24, num_val=8, size=(64, 80), seed=0,
             num_aug=None):
    """Write a PASCAL VOC 2012 + SBD "aug" layout (``VOCdevkit/VOC2012``).

    ``SegmentationClass``: palette PNGs with a 255 band on thing outlines
    (train + val); ``SegmentationClassAug``: plain PNGs without the band
    (train + ``num_aug`` aug-only images, default ``num_train // 2``).
    """
    num_aug = num_train // 2 if num_aug is None else num_aug
    if isinstance(num_aug, bool) or not isinstance(
            num_aug, (int, np.integer)) or not 0 <= num_aug <= MAX_COUNT:
        raise DemoDataError(f'num_aug must be an integer in [0, {MAX_COUNT}]'
                            f', got {num_aug!r}')
    from PIL import Image
    names = {'train': [], 'val': [], 'aug': []}

    def write(root, split, i, img, lbl, roles):
        name = f'{2007 + i % 5}_{_SEED_CODE[split] * MAX_COUNT + i:06d}'
        names[split].append(name)
        _imwrite(root / 'JPEGImages' / f'{name}.jpg', img,
                 (cv2.IMWRITE_JPEG_QUALITY, 95))
        if split != 'val':
            _imwrite(root / 'SegmentationClassAug' / f'{name}.png', lbl)
        if split != 'aug':
            band = cv2.morphologyEx((roles >= 6).astype(np.uint8),
                                    cv2.MORPH_GRADIENT, np.ones((3, 3)))
            voc = np.where(band > 0, 255, lbl).astype(np.uint8)
            im = Image.fromarray(voc)
            im.putpalette(voc_palette().tobytes())
            (root / 'SegmentationClass').mkdir(exist_ok=True)
            im.save(str(root / 'SegmentationClass' / f'{name}.png'))
    info = _make('voc', out_dir, num_train, num_val, size, seed, write,
                 num_aug=int(num_aug))
    sets = Path(out_dir) / 'ImageSets' / 'Segmentation'
    sets.mkdir(parents=True, exist_ok=True)
    for name, listed in (('train', names['train']), ('val', names['val']),
                         ('trainval', names['train'] + names['val']),
                         ('aug', sorted(names['train'] + names['aug']))):
        (sets / f'{name}.txt').write_text(''.join(n + '\n' for n in listed))
    return info


def make_ade20k(out_dir, num_train=24, num_val=8, size=(64, 80), seed=0):
    """Write an ADEChallengeData2016 layout (0 = other, 1..150 = classes;
    the values used are :data:`ADE20K_USED_CLASSES`)."""
    def write(root, split, i, img, lbl, roles):
        folder, tag = ('training', 'train') if split == 'train' else \
            ('validation', 'val')
        name = f'ADE_{tag}_{i + 1:08d}'
        _imwrite(root / 'images' / folder / f'{name}.jpg', img,
                 (cv2.IMWRITE_JPEG_QUALITY, 95))
        _imwrite(root / 'annotations' / folder / f'{name}.png', lbl)
    return _make('ade20k', out_dir, num_train, num_val, size, seed, write)


_MAKERS = {'cityscapes': make_cityscapes, 'voc': make_voc,
           'ade20k': make_ade20k}


def ensure_demo_data(layout='cityscapes', out_dir=None, num_train=None,
                     num_val=None, size=None, seed=0, force=False):
    """Build a dataset atomically unless an identical one is already there.

    Built in a hidden sibling folder and renamed into place when complete,
    so an interrupted run leaves nothing (or the previous dataset). A
    non-empty ``out_dir`` not made by this generator is refused
    (:class:`DemoDataError`, as are bad parameters), even with ``force``.
    ``None`` arguments take :data:`DEFAULTS`. Returns the manifest plus
    ``root`` and ``created`` (False if an identical dataset was reused).
    """
    if layout not in LAYOUTS:
        raise DemoDataError(f'layout must be one of {LAYOUTS}, got '
                            f'{layout!r}')
    d = DEFAULTS[layout]
    num_train = d['num_train'] if num_train is None else num_train
    num_val = d['num_val'] if num_val is None else num_val
    h, w = _check_params(num_train, num_val, size or d['size'], seed)
    target = Path(out_dir or d['out']).absolute()
    key = _manifest_key(layout, num_train, num_val, h, w, seed)
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise DemoDataError(f'{target} exists and is not a directory')
        try:
            old = json.loads((target / MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict) and any(target.iterdir()):
            raise DemoDataError(
                f'{target} is a non-empty folder not made by this generator; '
                'refusing to replace it (remove it or choose another --out)')
        if isinstance(old, dict) and not force and all(
                old.get(k) == v for k, v in key.items()):
            return dict(old, root=str(target), created=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f'.{target.name}.tmp-{uuid.uuid4().hex[:8]}'
    trash = target.parent / f'.{target.name}.old-{uuid.uuid4().hex[:8]}'
    try:
        info = _MAKERS[layout](tmp, num_train=num_train, num_val=num_val,
                               size=(h, w), seed=seed)
        # rename() cannot replace a non-empty folder: move the old one aside
        if target.exists():
            os.replace(target, trash)
        os.replace(tmp, target)
    except BaseException:
        if trash.exists() and not target.exists():
            os.replace(trash, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)
    return dict(info, root=str(target), created=True)


def parse_size(text):
    """``'HxW'`` -> ``(h, w)``; ``argparse.ArgumentTypeError`` if invalid."""
    parts = str(text).lower().split('x')
    ok = len(parts) == 2 and all(p.isdigit() for p in parts)
    h, w = (int(p) for p in parts) if ok else (0, 0)
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise argparse.ArgumentTypeError(
            f'expected HxW with sides in [{MIN_SIDE}, {MAX_SIDE}] such as '
            f'64x128, got {text!r}')
    return h, w


def _int_arg(low):
    def parse(text):
        n = int(text) if str(text).lstrip('-').isdigit() else None
        if n is None or not low <= n <= MAX_COUNT:
            raise argparse.ArgumentTypeError(
                f'expected an integer in [{low}, {MAX_COUNT}], got {text!r}')
        return n
    return parse


class _Parser(argparse.ArgumentParser):

    def error(self, message):
        from ..utils import exit_with_error
        exit_with_error(message)


def main(argv=None):
    """Command line: ``tools/make_demo_data.py``. Returns 0 on success."""
    from ..utils import exit_with_error
    p = _Parser(prog='make_demo_data', description=__doc__.split('\n')[0])
    p.add_argument('--layout', choices=LAYOUTS, default='cityscapes')
    p.add_argument('--out', help='dataset root (default: data/demo_<layout>)')
    p.add_argument('--num-train', type=_int_arg(1),
                   help='training images (default: per layout, DEFAULTS)')
    p.add_argument('--num-val', type=_int_arg(1), help='validation images')
    p.add_argument('--size', type=parse_size, help='image size HxW')
    p.add_argument('--seed', type=_int_arg(0), default=0)
    p.add_argument('--force', action='store_true',
                   help='rebuild even if an identical dataset exists')
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        info = ensure_demo_data(args.layout, args.out, args.num_train,
                                args.num_val, args.size, args.seed, args.force)
    except (DemoDataError, OSError) as e:
        exit_with_error(e, code=2 if isinstance(e, DemoDataError) else 1)
    h, w = info['size']
    desc = (f"{info['layout']} ({info['num_train']} train + "
            f"{info['num_val']} val, {h}x{w}, seed {info['seed']})")
    if info['created']:
        print(f"make_demo_data: wrote {desc} to {info['root']} in "
              f'{time.perf_counter() - start:.1f}s')
    else:
        print(f"make_demo_data: {info['root']} already holds {desc}; "
              'skipped (use --force to rebuild)')
    return 0

