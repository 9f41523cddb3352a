"""Seeded synthetic semantic-segmentation datasets in real on-disk layouts.

Three layouts are produced, each readable unchanged by MMSegmentation 1.2.2's
own dataset classes:

* ``cityscapes``: ``CityscapesDataset`` (19 train ids, 255 = ignore).
* ``voc``: ``PascalVOCDataset`` with both ``SegmentationClass`` (palette PNGs
  with a 255 boundary band) and the ``SegmentationClassAug`` + ``aug.txt``
  layout used by ``configs/_base_/datasets/pascal_voc12_aug.py``.
* ``ade20k``: ``ADE20KDataset`` (0 = other, 1..150 = classes).

Scenes are procedurally drawn (street scenes, objects on backgrounds, indoor
rooms) so that a segmentation network can learn them quickly: every class has
its own colour distribution, texture, shape and typical position, while
Gaussian noise, colour casts and occlusion keep a per-pixel colour classifier
well below 100 %.

Only numpy and OpenCV are needed (Pillow additionally for the VOC palette
PNGs). Every image is drawn from its own generator seeded by
``(seed, layout, split, index)``, so output is byte-for-byte reproducible and
image ``i`` does not depend on how many other images are requested.

Example:
    python tools/make_demo_data.py --layout voc --num-train 16 --seed 3
"""
import argparse
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    'LAYOUTS', 'DEFAULTS', 'MANIFEST_NAME', 'FORMAT_VERSION',
    'CITYSCAPES_CLASSES', 'VOC_CLASSES', 'ADE20K_USED_CLASSES',
    'DemoDataError', 'make_cityscapes', 'make_voc', 'make_ade20k',
    'ensure_demo_data', 'voc_palette', 'parse_size', 'main'
]

# Bump whenever the drawn content changes, so cached datasets are rebuilt.
FORMAT_VERSION = 1
MANIFEST_NAME = 'demo_data.json'
LAYOUTS = ('cityscapes', 'voc', 'ade20k')
MIN_SIDE = 32
MAX_SIDE = 4096
MAX_COUNT = 100000

DEFAULTS = {
    'cityscapes':
    dict(num_train=24, num_val=8, size=(128, 256), out='data/demo_cityscapes'),
    'voc':
    dict(num_train=24, num_val=8, size=(128, 160), out='data/demo_voc'),
    'ade20k':
    dict(num_train=24, num_val=8, size=(128, 160), out='data/demo_ade20k'),
}

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation', 'terrain',
                      'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle')
VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle',
               'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog',
               'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')
# Annotation value -> ADE20K class name (value = index in mmseg's tuple + 1).
ADE20K_USED_CLASSES = {
    1: 'wall',
    2: 'building',
    3: 'sky',
    4: 'floor',
    5: 'tree',
    6: 'ceiling',
    7: 'road',
    8: 'bed ',
    9: 'windowpane',
    10: 'grass',
    11: 'cabinet',
    12: 'sidewalk',
    13: 'person',
    15: 'door',
    16: 'table',
    17: 'mountain',
    18: 'plant',
    19: 'curtain',
    20: 'chair',
    21: 'car',
    23: 'painting',
    24: 'sofa',
    25: 'shelf',
    29: 'rug',
    33: 'fence',
    37: 'lamp',
    44: 'signboard',
    81: 'bus',
    83: 'light',
    84: 'truck',
    90: 'television receiver',
    94: 'pole',
    117: 'minibike',
    128: 'bicycle',
    137: 'traffic light'
}

_CS_CITIES = {
    'train': ('aachen', 'bochum', 'bremen'),
    'val': ('frankfurt', 'lindau', 'munster'),
}
_LAYOUT_CODE = {'cityscapes': 1, 'voc': 2, 'ade20k': 3}
_SPLIT_CODE = {'train': 0, 'val': 1, 'aug': 2}


class DemoDataError(ValueError):
    """Invalid request (bad parameters or an unsafe output folder)."""


# --------------------------------------------------------------------------
# Materials: per-pixel texture is looked up from a material map so that a
# class can mix materials (a building with glass windows) and one material
# can serve several classes.
(_SMOOTH, _GRAIN, _FOLIAGE, _SKY, _FABRIC, _FUR, _METAL, _CONCRETE, _WOOD,
 _PATCHY, _GLASS, _GRASS) = range(12)
# Columns: fine grey grain amplitude, coarse blotch amplitude for R, G, B.
_TEXTURE = np.array(
    [
        [3, 4, 4, 4],  # smooth
        [9, 5, 5, 5],  # grain (asphalt)
        [12, 10, 24, 8],  # foliage
        [1.5, 3, 4, 6],  # sky
        [6, 10, 10, 10],  # fabric
        [11, 14, 12, 10],  # fur / wool
        [3, 5, 5, 6],  # metal
        [7, 8, 8, 8],  # concrete
        [5, 14, 9, 4],  # wood
        [4, 45, 45, 45],  # patchy (cow hide, book spines, paintings)
        [2, 6, 6, 8],  # glass
        [10, 8, 16, 6],  # grass
    ],
    dtype=np.float32)


def _rng(seed, layout, split, index):
    return np.random.default_rng(
        [int(seed), _LAYOUT_CODE[layout], _SPLIT_CODE[split],
         int(index)])


def _jitter(rng, colour, std=10.0):
    return np.clip(
        np.asarray(colour, np.float64) + rng.normal(0, std, 3), 0, 255)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _ipt(x, y):
    return int(round(x)), int(round(y))


class _Canvas:
    """Image, label and material maps painted together, back to front."""

    def __init__(self, h, w):
        self.h, self.w = h, w
        self.img = np.zeros((h, w, 3), np.float32)
        self.lbl = np.zeros((h, w), np.uint8)
        self.mat = np.zeros((h, w), np.uint8)

    def _apply(self, fn, label, colour, mat):
        fn(self.img, tuple(float(c) for c in colour))
        fn(self.mat, int(mat))
        # label None repaints appearance only (windows stay "building").
        if label is not None:
            fn(self.lbl, int(label))

    def polys(self, polys, label, colour, mat):
        pts = [
            np.round(np.asarray(p, np.float64)).astype(np.int32).reshape(
                -1, 1, 2) for p in polys
        ]
        if pts:
            self._apply(lambda a, v: cv2.fillPoly(a, pts, v), label, colour,
                        mat)

    def poly(self, pts, label, colour, mat):
        self.polys([pts], label, colour, mat)

    def rect(self, x0, y0, x1, y1, label, colour, mat):
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], label, colour, mat)

    def ellipse(self, cx, cy, ax, ay, label, colour, mat):
        c, axes = _ipt(cx, cy), (max(1,
                                     int(round(ax))), max(1, int(round(ay))))
        self._apply(lambda a, v: cv2.ellipse(a, c, axes, 0, 0, 360, v, -1),
                    label, colour, mat)

    def circle(self, cx, cy, r, label, colour, mat, thickness=-1):
        c, r = _ipt(cx, cy), max(1, int(round(r)))
        self._apply(lambda a, v: cv2.circle(a, c, r, v, thickness), label,
                    colour, mat)

    def line(self, x0, y0, x1, y1, thick, label, colour, mat):
        p0, p1, t = _ipt(x0, y0), _ipt(x1, y1), max(1, int(round(thick)))
        self._apply(lambda a, v: cv2.line(a, p0, p1, v, t), label, colour, mat)

    def gradient(self, y0, y1, top, bottom, label, mat):
        y0, y1 = max(0, int(round(y0))), min(self.h, int(round(y1)))
        if y1 <= y0:
            return
        a = np.linspace(0.0, 1.0, y1 - y0, dtype=np.float32)[:, None, None]
        top = np.asarray(top, np.float32)
        bottom = np.asarray(bottom, np.float32)
        self.img[y0:y1] = top * (1 - a) + bottom * a
        self.lbl[y0:y1] = label
        self.mat[y0:y1] = mat

    def finish(self, rng):
        """Add texture, lighting and noise; return the uint8 RGB image."""
        h, w = self.h, self.w
        fine = rng.standard_normal((h, w), dtype=np.float32)
        coarse = rng.standard_normal((h // 8 + 2, w // 8 + 2),
                                     dtype=np.float32)
        coarse = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        tex = _TEXTURE[self.mat]
        img = (self.img + tex[..., :1] * fine[..., None] +
               tex[..., 1:] * coarse[..., None])
        # Global lighting changes stop a model from relying on exact colours.
        img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 6, 3).astype(
            np.float32)
        # Mild camera blur makes class boundaries soft, as in real photos.
        img = cv2.GaussianBlur(img, (3, 3), 0.6)
        img += rng.normal(0, rng.uniform(3, 7), img.shape).astype(np.float32)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Object shapes in a unit box (x right, y down). Geometry conventions:
#   rect (x0, y0, x1, y1); poly ((x, y), ...); ell (cx, cy, rx, ry) with rx
#   relative to box width and ry to box height; circ (cx, cy, r) and
#   ring (cx, cy, r, thick) and line (x0, y0, x1, y1, thick) with r/thick
#   relative to box height.
# Colour: float = shade of the object's base colour, 'alt' = its second
# colour, 'skin', or an RGB tuple. Material None = the shape's material.
_DARK = (22, 22, 24)
_TYRE = (20, 20, 20)
_HUB = (150, 150, 150)
_GLASS_C = (45, 55, 72)
_WOOD_C = (110, 75, 45)
_SKIN = ((225, 185, 155), (195, 150, 115), (140, 95, 65), (95, 65, 45))
_CLOTHES = ((40, 45, 70), (150, 30, 30), (60, 60, 60), (200, 200, 190),
            (40, 90, 60), (180, 140, 60), (90, 50, 110), (30, 30, 30))

# yapf: disable
_SHAPES = {
    'car': dict(
        aspect=(1.8, 2.3), mat=_METAL,
        colours=((170, 30, 30), (30, 50, 140), (225, 225, 225), (35, 35, 38),
                 (160, 165, 170), (30, 90, 50), (200, 160, 40)),
        parts=(('poly', ((.18, .48), (.3, .1), (.72, .1), (.86, .48)), 1.0,
                None),
               ('rect', (0, .42, 1, .86), 1.0, None),
               ('poly', ((.24, .46), (.33, .16), (.49, .16), (.49, .46)),
                _GLASS_C, _GLASS),
               ('poly', ((.53, .46), (.53, .16), (.69, .16), (.8, .46)),
                _GLASS_C, _GLASS),
               ('rect', (.93, .5, 1, .58), (230, 220, 170), _SMOOTH),
               ('circ', (.22, .84, .16), _TYRE, _GRAIN),
               ('circ', (.78, .84, .16), _TYRE, _GRAIN),
               ('circ', (.22, .84, .06), _HUB, None),
               ('circ', (.78, .84, .06), _HUB, None))),
    'bus': dict(
        aspect=(1.6, 2.4), mat=_METAL,
        colours=((220, 180, 30), (180, 40, 40), (60, 120, 190),
                 (230, 230, 225)),
        parts=(('rect', (0, 0, 1, .88), 1.0, None),
               ('rect', (.04, .12, .96, .45), _GLASS_C, _GLASS),
               ('rect', (0, .6, 1, .66), 0.6, None),
               ('rect', (.08, .12, .18, .85), _GLASS_C, _GLASS),
               ('circ', (.2, .88, .12), _TYRE, _GRAIN),
               ('circ', (.8, .88, .12), _TYRE, _GRAIN))),
    'truck': dict(
        aspect=(1.5, 2.2), mat=_METAL,
        colours=((215, 215, 210), (60, 90, 140), (150, 40, 35),
                 (90, 95, 90)),
        parts=(('rect', (.3, 0, 1, .85), 1.0, None),
               ('rect', (0, .3, .29, .88), 'alt', None),
               ('rect', (.04, .36, .24, .55), _GLASS_C, _GLASS),
               ('circ', (.15, .88, .12), _TYRE, _GRAIN),
               ('circ', (.65, .88, .12), _TYRE, _GRAIN),
               ('circ', (.85, .88, .12), _TYRE, _GRAIN))),
    'train': dict(
        aspect=(2.4, 3.4), mat=_METAL,
        colours=((205, 205, 200), (200, 60, 40), (60, 80, 130)),
        parts=(('poly', ((0, .05), (.93, .05), (1, .3), (1, .9), (0, .9)), 1.0,
                None),
               ('rect', (.03, .15, .22, .45), _GLASS_C, _GLASS),
               ('rect', (.27, .15, .47, .45), _GLASS_C, _GLASS),
               ('rect', (.52, .15, .72, .45), _GLASS_C, _GLASS),
               ('poly', ((.77, .15), (.92, .15), (.97, .45), (.77, .45)),
                _GLASS_C, _GLASS),
               ('rect', (0, .6, 1, .68), 'alt', None),
               ('rect', (.05, .9, .95, 1), _DARK, _GRAIN))),
    'person': dict(
        aspect=(.3, .45), mat=_FABRIC, colours=_CLOTHES,
        parts=(('circ', (.5, .09, .09), 'skin', _SMOOTH),
               ('poly', ((.2, .19), (.8, .19), (.72, .58), (.28, .58)), 1.0,
                None),
               ('line', (.22, .22, .1, .55, .06), 1.0, None),
               ('line', (.78, .22, .9, .55, .06), 1.0, None),
               ('rect', (.3, .56, .48, 1.0), 'alt', None),
               ('rect', (.52, .56, .7, 1.0), 'alt', None))),
    'bicycle': dict(
        aspect=(1.5, 1.8), mat=_METAL,
        colours=((30, 30, 30), (60, 60, 160), (170, 30, 30), (200, 200, 200)),
        parts=(('ring', (.22, .7, .28, .05), _TYRE, _GRAIN),
               ('ring', (.78, .7, .28, .05), _TYRE, _GRAIN),
               ('line', (.22, .7, .4, .32, .05), 1.0, None),
               ('line', (.4, .32, .5, .72, .05), 1.0, None),
               ('line', (.5, .72, .22, .7, .05), 1.0, None),
               ('line', (.4, .32, .72, .3, .05), 1.0, None),
               ('line', (.72, .3, .5, .72, .05), 1.0, None),
               ('line', (.72, .3, .78, .7, .05), 1.0, None),
               ('line', (.72, .3, .75, .12, .05), _DARK, None),
               ('rect', (.34, .24, .46, .3), _DARK, None))),
    'motorbike': dict(
        aspect=(1.5, 1.9), mat=_METAL,
        colours=((40, 40, 45), (160, 25, 25), (30, 60, 140), (200, 200, 200)),
        parts=(('circ', (.2, .74, .26), _TYRE, _GRAIN),
               ('circ', (.8, .74, .26), _TYRE, _GRAIN),
               ('circ', (.2, .74, .1), _HUB, None),
               ('circ', (.8, .74, .1), _HUB, None),
               ('poly', ((.22, .55), (.38, .3), (.72, .3), (.82, .55),
                         (.6, .72), (.35, .72)), 1.0, None),
               ('ell', (.55, .3, .14, .1), 0.7, None),
               ('line', (.72, .3, .8, .08, .05), _DARK, None))),
    'aeroplane': dict(
        aspect=(1.8, 2.6), mat=_METAL,
        colours=((225, 225, 230), (180, 185, 195), (200, 210, 230)),
        parts=(('ell', (.5, .5, .48, .12), 1.0, None),
               ('poly', ((.4, .52), (.6, .52), (.42, .98), (.34, .98)), 0.9,
                None),
               ('poly', ((.42, .48), (.56, .48), (.44, .1), (.38, .1)), 0.8,
                None),
               ('poly', ((.03, .5), (.14, .5), (.06, .12)), 1.0, None),
               ('line', (.22, .46, .8, .46, .025), _GLASS_C, _GLASS),
               ('ell', (.92, .47, .04, .05), _GLASS_C, _GLASS))),
    'bird': dict(
        aspect=(1.1, 1.5), mat=_FUR,
        colours=((120, 80, 50), (30, 30, 30), (230, 230, 230), (200, 60, 40),
                 (70, 100, 180)),
        parts=(('poly', ((.18, .5), (0, .38), (0, .72)), 0.8, None),
               ('ell', (.45, .55, .33, .22), 1.0, None),
               ('circ', (.78, .35, .14), 0.9, None),
               ('poly', ((.88, .3), (1.0, .37), (.88, .43)), (230, 170, 40),
                _SMOOTH),
               ('ell', (.42, .5, .22, .12), 0.7, None),
               ('circ', (.8, .31, .025), _DARK, _SMOOTH),
               ('line', (.4, .75, .38, 1.0, .03), (200, 150, 60), _SMOOTH),
               ('line', (.52, .75, .54, 1.0, .03), (200, 150, 60), _SMOOTH))),
    'boat': dict(
        aspect=(1.0, 1.6), mat=_SMOOTH,
        colours=((230, 230, 230), (170, 40, 40), (40, 60, 120),
                 (120, 80, 40)),
        parts=(('poly', ((0, .62), (1, .62), (.85, .92), (.12, .92)), 1.0,
                None),
               ('line', (.5, .05, .5, .62, .03), (90, 70, 50), _WOOD),
               ('poly', ((.53, .06), (.53, .58), (.92, .58)), (240, 240, 235),
                _FABRIC),
               ('poly', ((.47, .15), (.47, .58), (.16, .58)), 'alt', _FABRIC),
               ('rect', (.05, .68, .95, .72), 0.6, None))),
    'bottle': dict(
        aspect=(.28, .4), mat=_GLASS,
        colours=((40, 110, 50), (110, 60, 20), (180, 200, 190), (30, 30, 60)),
        parts=(('rect', (.1, .38, .9, 1.0), 1.0, None),
               ('ell', (.5, .38, .4, .1), 1.0, None),
               ('rect', (.35, .0, .65, .35), 1.0, None),
               ('rect', (.33, .0, .67, .06), (200, 180, 60), _SMOOTH),
               ('rect', (.1, .55, .9, .8), 'alt', _SMOOTH))),
    'chair': dict(
        aspect=(.6, .9), mat=_WOOD,
        colours=((120, 80, 45), (40, 40, 40), (170, 40, 40), (200, 190, 170)),
        parts=(('rect', (.1, 0, .24, .55), 1.0, None),
               ('rect', (.1, .05, .6, .14), 1.0, None),
               ('rect', (.1, .5, .9, .6), 1.0, None),
               ('rect', (.12, .6, .2, 1), 0.8, None),
               ('rect', (.8, .6, .88, 1), 0.8, None))),
    'cat': dict(
        aspect=(1.2, 1.5), mat=_FUR,
        colours=((200, 120, 50), (120, 120, 120), (35, 35, 35),
                 (230, 220, 200)),
        parts=(('line', (.14, .62, .03, .25, .06), 1.0, None),
               ('ell', (.42, .62, .32, .22), 1.0, None),
               ('rect', (.22, .72, .3, 1.0), 0.9, None),
               ('rect', (.55, .72, .63, 1.0), 0.9, None),
               ('circ', (.78, .38, .17), 1.0, None),
               ('poly', ((.66, .3), (.69, .06), (.76, .24)), 1.0, None),
               ('poly', ((.8, .24), (.88, .06), (.9, .3)), 1.0, None),
               ('circ', (.74, .35, .03), (60, 160, 70), _SMOOTH),
               ('circ', (.83, .35, .03), (60, 160, 70), _SMOOTH))),
    'dog': dict(
        aspect=(1.2, 1.6), mat=_FUR,
        colours=((150, 100, 50), (40, 30, 25), (210, 170, 100),
                 (230, 225, 215)),
        parts=(('line', (.15, .4, .03, .16, .05), 1.0, None),
               ('ell', (.45, .45, .32, .2), 1.0, None),
               ('rect', (.2, .55, .28, 1), 0.9, None),
               ('rect', (.33, .55, .41, 1), 0.8, None),
               ('rect', (.55, .55, .63, 1), 0.9, None),
               ('rect', (.66, .55, .74, 1), 0.8, None),
               ('circ', (.82, .28, .15), 1.0, None),
               ('ell', (.94, .33, .06, .06), 0.8, None),
               ('ell', (.76, .32, .04, .12), 0.6, None),
               ('circ', (.99, .32, .025), _DARK, _SMOOTH))),
    'horse': dict(
        aspect=(1.1, 1.4), mat=_FUR,
        colours=((120, 70, 35), (60, 40, 25), (200, 195, 185), (30, 25, 20)),
        parts=(('line', (.16, .38, .07, .7, .04), 0.5, None),
               ('ell', (.45, .42, .3, .15), 1.0, None),
               ('rect', (.2, .5, .26, 1), 0.9, None),
               ('rect', (.3, .5, .36, 1), 0.8, None),
               ('rect', (.56, .5, .62, 1), 0.9, None),
               ('rect', (.66, .5, .72, 1), 0.8, None),
               ('poly', ((.62, .36), (.76, .1), (.86, .13), (.76, .46)), 1.0,
                None),
               ('ell', (.88, .16, .1, .07), 1.0, None),
               ('line', (.7, .2, .76, .06, .03), 0.4, None))),
    'cow': dict(
        aspect=(1.3, 1.6), mat=_PATCHY,
        colours=((235, 230, 220), (40, 35, 30), (140, 90, 50)),
        parts=(('rect', (.2, .5, .27, 1), 0.9, None),
               ('rect', (.3, .5, .37, 1), 0.8, None),
               ('rect', (.58, .5, .65, 1), 0.9, None),
               ('rect', (.68, .5, .75, 1), 0.8, None),
               ('ell', (.45, .42, .33, .2), 1.0, None),
               ('ell', (.85, .3, .09, .13), 1.0, None),
               ('line', (.8, .18, .76, .1, .03), (220, 210, 180), _SMOOTH),
               ('line', (.9, .18, .94, .1, .03), (220, 210, 180), _SMOOTH))),
    'sheep': dict(
        aspect=(1.2, 1.5), mat=_FUR,
        colours=((225, 220, 200), (200, 195, 180), (180, 170, 150)),
        parts=(('rect', (.25, .6, .31, 1), _DARK, _SMOOTH),
               ('rect', (.6, .6, .66, 1), _DARK, _SMOOTH),
               ('ell', (.45, .45, .35, .25), 1.0, None),
               ('ell', (.85, .35, .08, .12), (40, 35, 30), _SMOOTH))),
    'diningtable': dict(
        aspect=(1.4, 2.2), mat=_WOOD,
        colours=((130, 85, 50), (170, 120, 70), (90, 60, 40),
                 (220, 215, 205)),
        parts=(('rect', (.3, .4, .35, .85), 0.7, None),
               ('rect', (.65, .4, .7, .85), 0.7, None),
               ('poly', ((.06, .18), (.94, .18), (1, .34), (0, .34)), 1.0,
                None),
               ('rect', (.03, .34, .97, .42), 0.75, None),
               ('rect', (.06, .4, .12, 1), 0.85, None),
               ('rect', (.88, .4, .94, 1), 0.85, None))),
    'pottedplant': dict(
        aspect=(.6, .9), mat=_FOLIAGE,
        colours=((50, 110, 40), (70, 130, 50), (90, 120, 40)),
        parts=(('poly', ((.28, .62), (.72, .62), (.64, 1), (.36, 1)),
                (170, 90, 55), _SMOOTH),
               ('circ', (.5, .36, .22), 1.0, None),
               ('circ', (.3, .45, .16), 0.9, None),
               ('circ', (.7, .45, .16), 0.9, None),
               ('circ', (.42, .18, .14), 1.1, None),
               ('circ', (.6, .2, .14), 1.0, None))),
    'sofa': dict(
        aspect=(1.7, 2.4), mat=_FABRIC,
        colours=((140, 40, 40), (60, 70, 110), (150, 140, 120), (70, 90, 60),
                 (45, 45, 45)),
        parts=(('rect', (.04, .05, .96, .55), 0.9, None),
               ('rect', (0, .45, 1, .85), 1.0, None),
               ('rect', (0, .3, .1, .85), 0.8, None),
               ('rect', (.9, .3, 1, .85), 0.8, None),
               ('line', (.5, .47, .5, .8, .02), 0.7, None),
               ('rect', (.05, .85, .1, 1), (40, 30, 20), _WOOD),
               ('rect', (.9, .85, .95, 1), (40, 30, 20), _WOOD))),
    'tvmonitor': dict(
        aspect=(1.2, 1.6), mat=_SMOOTH,
        colours=((25, 25, 25), (60, 60, 65), (200, 200, 200)),
        parts=(('rect', (0, 0, 1, .84), 1.0, None),
               ('rect', (.06, .07, .94, .77), 'screen', _GLASS),
               ('rect', (.42, .84, .58, .94), 1.0, None),
               ('rect', (.25, .94, .75, 1), 1.0, None))),
    'bed': dict(
        aspect=(1.5, 2.2), mat=_FABRIC,
        colours=((200, 60, 60), (70, 100, 160), (220, 210, 190),
                 (120, 150, 90)),
        parts=(('rect', (0, 0, .1, .78), _WOOD_C, _WOOD),
               ('rect', (0, .5, 1, .78), _WOOD_C, _WOOD),
               ('rect', (.08, .32, 1, .62), 1.0, None),
               ('ell', (.2, .3, .09, .08), (235, 235, 230), _FABRIC),
               ('rect', (.02, .78, .06, 1), _WOOD_C, _WOOD),
               ('rect', (.94, .78, .98, 1), _WOOD_C, _WOOD))),
    'cabinet': dict(
        aspect=(.7, 1.4), mat=_WOOD,
        colours=((130, 85, 50), (200, 190, 170), (90, 60, 40),
                 (235, 235, 230)),
        parts=(('rect', (0, 0, 1, 1), 1.0, None),
               ('line', (.5, .05, .5, .95, .02), 0.6, None),
               ('line', (.04, .04, .96, .04, .02), 0.7, None),
               ('circ', (.43, .5, .025), (200, 180, 90), _METAL),
               ('circ', (.57, .5, .025), (200, 180, 90), _METAL))),
    'shelf': dict(
        aspect=(.6, 1.1), mat=_WOOD,
        colours=((130, 85, 50), (90, 60, 40), (200, 190, 170)),
        parts=(('rect', (0, 0, 1, 1), 1.0, None),
               ('rect', (.07, .04, .93, .3), 'alt', _PATCHY),
               ('rect', (.07, .35, .93, .63), 'alt', _PATCHY),
               ('rect', (.07, .68, .93, .96), 'alt', _PATCHY))),
    'lamp': dict(
        aspect=(.35, .55), mat=_FABRIC,
        colours=((230, 220, 180), (200, 170, 120), (240, 240, 235)),
        parts=(('line', (.5, .3, .5, .95, .03), (80, 80, 80), _METAL),
               ('ell', (.5, .97, .3, .03), (60, 60, 60), _METAL),
               ('poly', ((.25, 0), (.75, 0), (.95, .3), (.05, .3)), 1.0,
                None))),
}
# yapf: enable
_SCREEN = ((60, 110, 190), (200, 210, 230), (40, 160, 90), (30, 40, 60))


def _draw_shape(cv, rng, name, box, label, flip=False, colour=None):
    """Draw shape ``name`` into ``box`` = (x0, y0, x1, y1) in pixels."""
    spec = _SHAPES[name]
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    base = _jitter(
        rng, colour if colour is not None else _pick(rng, spec['colours']), 12)
    alt = _jitter(rng, _pick(rng, _CLOTHES), 12)
    skin = _jitter(rng, _pick(rng, _SKIN), 8)
    screen = _jitter(rng, _pick(rng, _SCREEN), 10)

    def fx(u):
        return x0 + (1.0 - u if flip else u) * bw

    def fy(v):
        return y0 + v * bh

    for kind, geo, col, mat in spec['parts']:
        if isinstance(col, float):
            c = np.clip(base * col, 0, 255)
        elif col == 'alt':
            c = alt
        elif col == 'skin':
            c = skin
        elif col == 'screen':
            c = screen
        else:
            c = _jitter(rng, col, 6)
        mat = spec['mat'] if mat is None else mat
        if kind == 'rect':
            cv.rect(fx(geo[0]), fy(geo[1]), fx(geo[2]), fy(geo[3]), label, c,
                    mat)
        elif kind == 'poly':
            cv.poly([(fx(u), fy(v)) for u, v in geo], label, c, mat)
        elif kind == 'ell':
            cv.ellipse(fx(geo[0]), fy(geo[1]), geo[2] * bw, geo[3] * bh, label,
                       c, mat)
        elif kind == 'circ':
            cv.circle(fx(geo[0]), fy(geo[1]), geo[2] * bh, label, c, mat)
        elif kind == 'ring':
            cv.circle(fx(geo[0]),
                      fy(geo[1]),
                      geo[2] * bh,
                      label,
                      c,
                      mat,
                      thickness=max(1, int(round(geo[3] * bh))))
        elif kind == 'line':
            cv.line(fx(geo[0]), fy(geo[1]), fx(geo[2]), fy(geo[3]),
                    geo[4] * bh, label, c, mat)


def _sky(cv, rng, y1, label):
    if rng.random() < 0.3:  # overcast
        top, bottom = (150, 155, 165), (205, 208, 212)
    else:
        top, bottom = (70, 125, 200), (170, 200, 230)
    cv.gradient(0, y1, _jitter(rng, top, 8), _jitter(rng, bottom, 8), label,
                _SKY)


# --------------------------------------------------------------------------
# Street scenes (Cityscapes, ADE20K outdoor). ``ids`` maps scene roles to
# label values; a role mapped to None is not drawn.
_CS_IDS = dict(road=0,
               sidewalk=1,
               building=2,
               wall=3,
               fence=4,
               pole=5,
               light=6,
               sign=7,
               vegetation=8,
               terrain=9,
               sky=10,
               person=11,
               rider=12,
               car=13,
               truck=14,
               bus=15,
               train=16,
               motorcycle=17,
               bicycle=18,
               void=255,
               mountain=None)
_ADE_OUT_IDS = dict(road=7,
                    sidewalk=12,
                    building=2,
                    wall=1,
                    fence=33,
                    pole=94,
                    light=137,
                    sign=44,
                    vegetation=5,
                    terrain=10,
                    sky=3,
                    person=13,
                    rider=13,
                    car=21,
                    truck=84,
                    bus=81,
                    train=None,
                    motorcycle=117,
                    bicycle=128,
                    void=0,
                    mountain=17)

_BUILDING_COLOURS = ((150, 120, 100), (120, 120, 125), (180, 165, 135),
                     (125, 75, 60), (95, 95, 105), (200, 190, 170))
_SIGN_COLOURS = ((210, 190, 30), (190, 40, 40), (40, 80, 180), (235, 235, 235))

# Sidewalk items: (kind, max count per side, depth range, kerb->facade range).
# yapf: disable
_WALK_ITEMS = (('tree', 4, (0.12, 0.95), (0.5, 0.95)),
               ('pole', 3, (0.15, 0.95), (0.05, 0.2)),
               ('person', 4, (0.15, 1.0), (0.2, 0.8)),
               ('clutter', 3, (0.2, 1.0), (0.3, 0.9)))
_RARE_VEHICLES = (('truck', 0.25), ('bus', 0.2), ('train', 0.07),
                  ('rider', 0.3))
# yapf: enable


def _street_scene(rng, h, w, ids):
    cv = _Canvas(h, w)
    yh = h * rng.uniform(0.36, 0.5)
    _sky(cv, rng, yh + 1, ids['sky'])
    if ids['mountain'] is not None and rng.random() < 0.5:
        xs = np.linspace(-0.05 * w, 1.05 * w, 9)
        ys = yh - h * rng.uniform(0.04, 0.2, xs.size)
        pts = list(zip(xs, ys)) + [(1.05 * w, yh + 1), (-0.05 * w, yh + 1)]
        cv.poly(pts, ids['mountain'], _jitter(rng, (100, 110, 120), 10),
                _CONCRETE)
    cv.rect(-1, yh, w + 1, h + 1, ids['terrain'],
            _jitter(rng, (120, 140, 70), 10), _GRASS)

    # One vanishing point (vx, yh); everything on the ground is placed at a
    # bottom-row x position ``xb`` and a depth t in (0, 1] (1 = bottom row),
    # so that road, kerbs and facades converge like a real street.
    vx = w * rng.uniform(0.38, 0.62)
    xl, xr = w * rng.uniform(-0.35, 0.12), w * rng.uniform(0.88, 1.35)
    outer = {
        -1: xl - w * rng.uniform(0.15, 0.4),
        1: xr + w * rng.uniform(0.15, 0.4)
    }
    kerb = {-1: xl, 1: xr}

    def gp(xb, t):
        return vx + t * (xb - vx), yh + t * (h - yh)

    road_c = _jitter(rng, (85, 85, 90), 8)
    cv.poly([gp(xl, 0), gp(xr, 0), gp(xr, 1),
             gp(xl, 1)], ids['road'], road_c, _GRAIN)
    walk_c = _jitter(rng, (160, 140, 145), 10)
    for s in (-1, 1):
        cv.poly(
            [gp(outer[s], 0),
             gp(kerb[s], 0),
             gp(kerb[s], 1),
             gp(outer[s], 1)], ids['sidewalk'], walk_c, _CONCRETE)
        cv.line(*gp(kerb[s], 0), *gp(kerb[s], 1), max(1, w * 0.008),
                ids['sidewalk'], walk_c * 0.7, _CONCRETE)
    lane = xl + (xr - xl) * rng.uniform(0.4, 0.6)
    t = 0.08
    while t < 1:
        t2 = min(1.0, t * 1.35)
        hw = w * 0.006
        cv.poly([(gp(lane, t)[0] - hw * t, gp(lane, t)[1]),
                 (gp(lane, t)[0] + hw * t, gp(lane, t)[1]),
                 (gp(lane, t2)[0] + hw * t2, gp(lane, t2)[1]),
                 (gp(lane, t2)[0] - hw * t2, gp(lane, t2)[1])], ids['road'],
                _jitter(rng, (215, 215, 205), 6), _SMOOTH)
        t = t2 * 1.35

    for s in (-1, 1):
        _street_buildings(cv, rng, h, w, yh, vx, outer[s], gp, ids)

    objects = []  # (depth, kind, bottom-row x), drawn far to near
    for s in (-1, 1):
        for kind, most, t_range, q_range in _WALK_ITEMS:
            for _ in range(int(rng.integers(0, most))):
                t = rng.uniform(*t_range)
                q = rng.uniform(*q_range)  # 0 = kerb, 1 = facade
                objects.append((t, kind, kerb[s] + (outer[s] - kerb[s]) * q))
    for _ in range(int(rng.integers(1, 6))):
        t = rng.uniform(0.1, 1.0)
        objects.append((t, 'car', xl + (xr - xl) * rng.uniform(0.12, 0.88)))
    for kind, p in _RARE_VEHICLES:
        if ids.get(kind) is not None and rng.random() < p:
            t = rng.uniform(0.15, 0.9)
            objects.append((t, kind, xl + (xr - xl) * rng.uniform(0.15, 0.85)))
    objects.sort(key=lambda o: o[0])
    for t, kind, xb in objects:
        _street_object(cv, rng, h, w, kind, gp(xb, t), t, ids)

    if rng.random() < 0.6:  # ego-vehicle bonnet, void as in Cityscapes
        eh = h * rng.uniform(0.08, 0.16)
        cv.ellipse(w * rng.uniform(0.45, 0.55), h + eh * 0.4, w * 0.75, eh,
                   ids['void'], _jitter(rng, (30, 30, 35), 5), _METAL)
    return cv


def _street_buildings(cv, rng, h, w, yh, vx, xb, gp, ids):
    """Facades along the outer sidewalk line ``xb``, far ones last."""
    edge = 0.0 if xb < vx else float(w)
    t_edge = (edge - vx) / (xb - vx)
    t0 = min(1.0, t_edge + 0.05)
    fence = rng.random() < 0.4
    span = sorted(rng.uniform(0.1, 1.0, 2)) if rng.random() < 0.5 else None
    while t0 > 0.05:
        t1 = t0 * rng.uniform(0.5, 0.8)
        if rng.random() < 0.15:  # gap: sky and vegetation show through
            tm = 0.5 * (t0 + t1)
            _street_object(cv, rng, h, w, 'tree', gp(xb, tm), tm, ids)
            t0 = t1
            continue
        hb = (h - yh) * rng.uniform(0.8, 3.0)

        def at(u, v, t0=t0, t1=t1, hb=hb):
            t = t1 + u * (t0 - t1)
            x, y = gp(xb, t)
            return x, y - v * t * hb

        colour = _jitter(rng, _pick(rng, _BUILDING_COLOURS), 12)
        cv.poly([at(0, 0), at(1, 0), at(1, 1),
                 at(0, 1)], ids['building'], colour, _CONCRETE)
        ncol = int(rng.integers(2, 6))
        nrow = max(2, int(hb / (h - yh) * 3))
        if t0 * hb * 0.4 / nrow >= 1.5:
            wins = []
            for i in range(ncol):
                for j in range(1, nrow):
                    ua, ub = (i + 0.25) / ncol, (i + 0.75) / ncol
                    va, vb = (j + 0.3) / nrow, (j + 0.7) / nrow
                    wins.append(
                        [at(ua, va),
                         at(ub, va),
                         at(ub, vb),
                         at(ua, vb)])
            wc = (50, 60, 75) if rng.random() < 0.6 else (140, 160, 180)
            cv.polys(wins, None, _jitter(rng, wc, 10), _GLASS)
        t0 = t1
    if span is not None:
        ta, tb = span
        hw = (h - yh) * rng.uniform(0.12, 0.25)
        role = 'fence' if fence else 'wall'
        colour = _jitter(rng, (140, 110, 80) if fence else (170, 165, 150), 10)

        def low(t, v):
            x, y = gp(xb, t)
            return x, y - v * t * hw

        cv.poly([low(ta, 0), low(tb, 0),
                 low(tb, 1), low(ta, 1)], ids[role], colour,
                _WOOD if fence else _CONCRETE)
        if fence:
            for t in np.linspace(ta, tb, 12):
                cv.line(*low(t, 0), *low(t, 1), 1, None, colour * 0.55, _WOOD)


def _street_object(cv, rng, h, w, kind, ground, t, ids):
    x, y = ground
    flip = bool(rng.random() < 0.5)
    if kind == 'tree':
        ht = t * h * rng.uniform(0.6, 1.0)
        green = _jitter(rng, (55, 105, 40), 12)
        cv.line(x, y, x, y - 0.5 * ht, max(1, t * w * 0.012),
                ids['vegetation'], _jitter(rng, (90, 70, 50), 8), _WOOD)
        for _ in range(int(rng.integers(3, 7))):
            r = ht * rng.uniform(0.15, 0.3)
            cv.circle(x + rng.normal(0, 0.12) * ht,
                      y - ht * rng.uniform(0.55, 0.8), r, ids['vegetation'],
                      green * rng.uniform(0.85, 1.15), _FOLIAGE)
    elif kind == 'pole':
        hp = t * h * rng.uniform(0.7, 1.1)
        grey = _jitter(rng, (120, 120, 125), 8)
        cv.line(x, y, x, y - hp, max(1, t * w * 0.01), ids['pole'], grey,
                _METAL)
        top = rng.random()
        r = max(1.5, t * w * 0.03)
        if top < 0.5:
            colour = _jitter(rng, _pick(rng, _SIGN_COLOURS), 8)
            if rng.random() < 0.5:
                cv.circle(x, y - hp, r, ids['sign'], colour, _SMOOTH)
            else:
                cv.rect(x - r, y - hp - r, x + r, y - hp + r, ids['sign'],
                        colour, _SMOOTH)
        elif top < 0.8:
            cv.rect(x - 0.6 * r, y - hp - 1.6 * r, x + 0.6 * r,
                    y - hp + 0.4 * r, ids['light'],
                    _jitter(rng, (35, 35, 30), 5), _SMOOTH)
            lit = _pick(rng, ((230, 40, 30), (240, 170, 30), (40, 220, 90)))
            cv.circle(x, y - hp - 0.6 * r, max(1, 0.35 * r), None, lit,
                      _SMOOTH)
    elif kind == 'person':
        ph = t * h * rng.uniform(0.42, 0.55)
        pw = ph * rng.uniform(0.3, 0.45)
        _draw_shape(cv, rng, 'person', (x - pw / 2, y - ph, x + pw / 2, y),
                    ids['person'], flip)
    elif kind == 'clutter':  # unlabelled stuff (void), random look
        s = t * w * rng.uniform(0.03, 0.08)
        colour = rng.uniform(30, 220, 3)
        if rng.random() < 0.5:
            cv.rect(x - s, y - 1.5 * s, x + s, y, ids['void'], colour, _SMOOTH)
        else:
            cv.ellipse(x, y - s, s, s, ids['void'], colour, _FABRIC)
    elif kind in ('car', 'truck', 'bus', 'train'):
        width = t * w * {
            'car': rng.uniform(0.3, 0.42),
            'truck': rng.uniform(0.45, 0.6),
            'bus': rng.uniform(0.5, 0.65),
            'train': rng.uniform(0.8, 1.0)
        }[kind]
        lo, hi = _SHAPES[kind]['aspect']
        height = width / rng.uniform(lo, hi)
        _draw_shape(cv, rng, kind,
                    (x - width / 2, y - height, x + width / 2, y), ids[kind],
                    flip)
    elif kind == 'rider':
        bike = 'bicycle' if rng.random() < 0.6 else 'motorbike'
        bw = t * w * rng.uniform(0.18, 0.24)
        bh = bw / 1.6
        ph = bh * 1.5
        role = 'bicycle' if bike == 'bicycle' else 'motorcycle'
        _draw_shape(cv, rng, bike, (x - bw / 2, y - bh, x + bw / 2, y),
                    ids[role], flip)
        _draw_shape(cv, rng, 'person',
                    (x - ph * 0.18, y - bh * 0.55 - ph, x + ph * 0.18,
                     y - bh * 0.55 + ph * 0.15), ids['rider'], flip)


def _cityscapes_sample(rng, h, w):
    cv = _street_scene(rng, h, w, _CS_IDS)
    if rng.random() < 0.5:  # "out of roi" frame, ignored like Cityscapes
        b = int(rng.integers(1, 4))
        for sl in ((slice(0, b), slice(None)), (slice(h - b, h), slice(None)),
                   (slice(None), slice(0, b)), (slice(None), slice(w - b, w))):
            cv.lbl[sl] = 255
    return cv.finish(rng), cv.lbl


# --------------------------------------------------------------------------
# VOC: 1-3 objects on an indoor / outdoor / plain background.
_VOC_SHAPES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')

_FLOOR_COLOURS = ((120, 85, 55), (170, 160, 150), (90, 60, 50), (150, 110, 70))


def voc_palette():
    """Return the standard 256-entry PASCAL VOC colour map.

    Returns:
        np.ndarray: ``(256, 3)`` uint8 RGB palette (index 255 = void colour).
    """
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, rgb = i, [0, 0, 0]
        for bit in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - bit)
            c >>= 3
        pal[i] = rgb
    return pal


def _voc_background(cv, rng):
    h, w = cv.h, cv.w
    kind = int(rng.integers(3))
    if kind == 0:  # room: wall above floor
        ys = h * rng.uniform(0.45, 0.75)
        wall = _jitter(rng, rng.uniform(120, 230, 3), 5)
        cv.rect(-1, -1, w + 1, ys, 0, wall, _SMOOTH)
        floor = _jitter(rng, _pick(rng, _FLOOR_COLOURS), 10)
        cv.rect(-1, ys, w + 1, h + 1, 0, floor, _WOOD)
        if rng.random() < 0.5:
            x0 = w * rng.uniform(0, 0.7)
            cv.rect(x0, h * 0.08, x0 + w * 0.25, ys * 0.8, 0,
                    _jitter(rng, (190, 215, 235), 10), _GLASS)
    elif kind == 1:  # outdoors: sky over grass, sand or water
        ys = h * rng.uniform(0.3, 0.65)
        _sky(cv, rng, ys + 1, 0)
        ground = _pick(rng, (((90, 140, 60), _GRASS),
                             ((190, 170, 130), _GRAIN), ((50, 90, 140), _SKY)))
        cv.rect(-1, ys, w + 1, h + 1, 0, _jitter(rng, ground[0], 10),
                ground[1])
    else:  # plain studio backdrop with a few out-of-focus blobs
        cv.gradient(0, h, rng.uniform(40, 220, 3), rng.uniform(40, 220, 3), 0,
                    _FABRIC)
        for _ in range(int(rng.integers(0, 4))):
            cv.ellipse(w * rng.random(), h * rng.random(),
                       w * rng.uniform(0.05, 0.2), h * rng.uniform(0.05, 0.2),
                       0, rng.uniform(40, 220, 3), _SMOOTH)


def _voc_sample(rng, h, w):
    """Return (image, voc_label, aug_label); aug has no boundary band."""
    cv = _Canvas(h, w)
    _voc_background(cv, rng)
    objs = []
    for _ in range(int(_pick(rng, (1, 1, 2, 2, 3)))):
        cls = int(rng.integers(1, 21))
        objs.append((cls, h * rng.uniform(0.3, 0.8), False))
    if rng.random() < 0.1:  # "difficult" object: void in VOC, class in SBD
        cls = int(rng.integers(1, 21))
        objs.append((cls, h * rng.uniform(0.15, 0.25), True))
    difficult = np.zeros((h, w), bool)
    for cls, bh, hard in objs:
        lo, hi = _SHAPES[_VOC_SHAPES[cls - 1]]['aspect']
        bw = bh * rng.uniform(lo, hi)
        if bw > 0.95 * w:
            bh, bw = bh * 0.95 * w / bw, 0.95 * w
        x0 = rng.uniform(-0.1 * bw, w - 0.9 * bw)
        y0 = rng.uniform(0.02 * h, h - 0.85 * bh)
        # 254 is never a real label, so it marks exactly the visible pixels.
        label = 254 if hard else cls
        _draw_shape(cv, rng, _VOC_SHAPES[cls - 1], (x0, y0, x0 + bw, y0 + bh),
                    label, bool(rng.random() < 0.5))
        if hard:  # always drawn last, so nothing paints over it later
            difficult |= cv.lbl == 254
            cv.lbl[cv.lbl == 254] = cls
    aug = cv.lbl.copy()
    # VOC marks a ~5 px void band on object outlines at ~500 px; a 3x3
    # morphological gradient gives the equivalent 2 px at these sizes.
    k = np.ones((3, 3), np.uint8)
    band = cv2.dilate(aug, k) != cv2.erode(aug, k)
    lbl = aug.copy()
    lbl[band | difficult] = 255
    return cv.finish(rng), lbl, aug


# --------------------------------------------------------------------------
# ADE20K: half indoor rooms, half outdoor streets; value 0 = "other".
def _ade_indoor(rng, h, w):
    cv = _Canvas(h, w)
    x0, x1 = w * rng.uniform(0.15, 0.35), w * rng.uniform(0.65, 0.85)
    y0, y1 = h * rng.uniform(0.1, 0.28), h * rng.uniform(0.55, 0.72)
    wall = _jitter(rng, rng.uniform(130, 230, 3), 5)
    cv.poly([(0, 0), (w, 0), (x1, y0), (x0, y0)], 6,
            _jitter(rng, (230, 228, 220), 8), _SMOOTH)
    floor = _jitter(rng, _pick(rng, _FLOOR_COLOURS), 10)
    cv.poly([(0, h), (w, h), (x1, y1), (x0, y1)], 4, floor, _WOOD)
    cv.poly([(0, 0), (x0, y0), (x0, y1), (0, h)], 1, wall * 0.85, _SMOOTH)
    cv.poly([(w, 0), (x1, y0), (x1, y1), (w, h)], 1, wall * 0.92, _SMOOTH)
    cv.rect(x0, y0, x1, y1, 1, wall, _SMOOTH)
    if rng.random() < 0.5:
        cv.ellipse((x0 + x1) / 2, y0 * 0.5, w * 0.06, max(1, h * 0.02), 83,
                   _jitter(rng, (250, 245, 220), 4), _SMOOTH)
    if rng.random() < 0.4:
        fy = y1 + (h - y1) * rng.uniform(0.3, 0.6)
        cv.poly([(x0 + (x1 - x0) * 0.1, y1 + (h - y1) * 0.15),
                 (x1 - (x1 - x0) * 0.1, y1 + (h - y1) * 0.15),
                 (x1 + (w - x1) * 0.3, fy), (x0 * 0.7, fy)], 29,
                _jitter(rng, rng.uniform(60, 200, 3), 5), _FABRIC)
    bw = x1 - x0
    if rng.random() < 0.65:  # window with curtains
        wx0 = x0 + bw * rng.uniform(0.05, 0.45)
        wx1 = min(x1 - 2, wx0 + bw * rng.uniform(0.25, 0.45))
        wy0, wy1 = y0 + (y1 - y0) * 0.12, y0 + (y1 - y0) * 0.65
        cv.rect(wx0, wy0, wx1, wy1, 9, _jitter(rng, (215, 215, 210), 5),
                _SMOOTH)
        cv.rect(wx0 + 1.5, wy0 + 1.5, wx1 - 1.5, wy1 - 1.5, 9,
                _jitter(rng, (170, 200, 235), 10), _GLASS)
        cv.line((wx0 + wx1) / 2, wy0, (wx0 + wx1) / 2, wy1, 1, 9,
                (215, 215, 210), _SMOOTH)
        if rng.random() < 0.7:
            cc = _jitter(rng, rng.uniform(60, 220, 3), 5)
            cw = (wx1 - wx0) * 0.25
            for cx in (wx0 - cw * 0.6, wx1 - cw * 0.4):
                cv.rect(cx, wy0 - 2, cx + cw, wy1 + 3, 19, cc, _FABRIC)
                cv.line(cx + cw / 2, wy0, cx + cw / 2, wy1, 1, 19, cc * 0.7,
                        _FABRIC)
    if rng.random() < 0.5:  # door on a side wall
        s = -1 if rng.random() < 0.5 else 1
        xa = x0 * 0.35 if s < 0 else x1 + (w - x1) * 0.4
        xb = x0 * 0.75 if s < 0 else x1 + (w - x1) * 0.8
        ya = y0 + (y1 - y0) * 0.1
        cv.rect(xa, ya - h * 0.05, xb, y1 + (h - y1) * 0.35, 15,
                _jitter(rng, _WOOD_C, 12), _WOOD)
    if rng.random() < 0.6:
        px = x0 + bw * rng.uniform(0.5, 0.8)
        pw, ph = bw * rng.uniform(0.12, 0.2), (y1 - y0) * rng.uniform(0.2, 0.3)
        py = y0 + (y1 - y0) * 0.15
        cv.rect(px, py, px + pw, py + ph, 23, _jitter(rng, (60, 45, 30), 8),
                _WOOD)
        cv.rect(px + 1.5, py + 1.5, px + pw - 1.5, py + ph - 1.5, 23,
                rng.uniform(40, 220, 3), _PATCHY)
    furniture = (('bed', 8), ('sofa', 24), ('diningtable', 16), ('chair', 20),
                 ('cabinet', 11), ('shelf', 25), ('lamp', 37),
                 ('pottedplant', 18), ('person', 13), ('tvmonitor', 90))
    items = []
    for _ in range(int(rng.integers(1, 4))):
        items.append((rng.uniform(0.1, 1.0), _pick(rng, furniture)))
    for _ in range(int(rng.integers(0, 3))):
        items.append((rng.uniform(0.1, 1.0), ('clutter', 0)))
    items.sort(key=lambda it: it[0])
    for depth, (name, label) in items:
        yb = y1 + depth * (h - y1)
        scale = 0.45 + 0.55 * depth  # nearer objects look bigger
        xc = w * rng.uniform(0.15, 0.85)
        if name == 'clutter':
            s = h * 0.08 * scale
            cv.rect(xc - s, yb - s, xc + s, yb, 0, rng.uniform(30, 230, 3),
                    _SMOOTH)
            continue
        oh = h * scale * {
            'bed': 0.35,
            'sofa': 0.35,
            'diningtable': 0.35,
            'chair': 0.4,
            'cabinet': 0.55,
            'shelf': 0.65,
            'lamp': 0.55,
            'pottedplant': 0.35,
            'person': 0.7,
            'tvmonitor': 0.25
        }[name]
        lo, hi = _SHAPES[name]['aspect']
        ow = oh * rng.uniform(lo, hi)
        _draw_shape(cv, rng, name, (xc - ow / 2, yb - oh, xc + ow / 2, yb),
                    label, bool(rng.random() < 0.5))
    return cv


def _ade_sample(rng, h, w):
    if rng.random() < 0.5:
        cv = _ade_indoor(rng, h, w)
    else:
        cv = _street_scene(rng, h, w, _ADE_OUT_IDS)
    return cv.finish(rng), cv.lbl


# --------------------------------------------------------------------------
# Writers
def _imwrite(path, arr, params=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), arr, list(params)):
        raise OSError(f'could not write {path}')


def _write_jpg(path, rgb):
    _imwrite(path, rgb, (cv2.IMWRITE_JPEG_QUALITY, 92))


def _write_palette_png(path, lbl, palette):
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow ships with mmcv
        raise RuntimeError('Pillow is needed to write VOC palette PNGs') from e
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.ascontiguousarray(lbl, np.uint8))
    im.putpalette(palette.tobytes())  # turns the 'L' image into mode 'P'
    im.save(str(path))


def _write_list(path, names):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(n + '\n' for n in names))


def _check_params(num_train, num_val, size, seed):
    for name, n in (('num_train', num_train), ('num_val', num_val)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) \
                or not 1 <= n <= MAX_COUNT:
            raise DemoDataError(
                f'{name} must be an integer in [1, {MAX_COUNT}], got {n!r}')
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DemoDataError(f'size must be (height, width), got {size!r}')
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise DemoDataError(f'size must be between {MIN_SIDE} and {MAX_SIDE} '
                            f'pixels per side, got {h}x{w}')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or seed < 0:
        raise DemoDataError(f'seed must be a non-negative integer, '
                            f'got {seed!r}')
    return h, w


def _manifest_key(layout, num_train, num_val, h, w, seed):
    return dict(format_version=FORMAT_VERSION,
                layout=layout,
                num_train=int(num_train),
                num_val=int(num_val),
                size=[h, w],
                seed=int(seed))


def _finish(layout, root, num_train, num_val, h, w, seed, splits, **extra):
    """Write the manifest (always the last file) and return the summary."""
    manifest = dict(splits=splits, **extra)
    manifest.update(_manifest_key(layout, num_train, num_val, h, w, seed))
    with open(root / MANIFEST_NAME, 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write('\n')
    return dict(manifest, root=str(root))


def make_cityscapes(out_dir, num_train=24, num_val=8, size=(128, 256), seed=0):
    """Write a Cityscapes-layout dataset of synthetic street scenes.

    Writes in place (``demo_data.json`` last); use :func:`ensure_demo_data`
    for an atomic, cached build.

    Args:
        out_dir (str | Path): Dataset root (created if missing).
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        size (tuple[int, int]): Image (height, width).
        seed (int): Non-negative random seed.

    Returns:
        dict: Summary with ``splits`` giving ``data_prefix`` per split.
    """
    h, w = _check_params(num_train, num_val, size, seed)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, n in (('train', num_train), ('val', num_val)):
        cities = _CS_CITIES[split]
        for i in range(n):
            img, lbl = _cityscapes_sample(_rng(seed, 'cityscapes', split, i),
                                          h, w)
            city = cities[i % len(cities)]
            stem = f'{city}_{i // len(cities):06d}_000019'
            _imwrite(
                root / 'leftImg8bit' / split / city /
                f'{stem}_leftImg8bit.png', img)
            _imwrite(
                root / 'gtFine' / split / city /
                f'{stem}_gtFine_labelTrainIds.png', lbl)
        splits[split] = dict(num=int(n),
                             data_prefix=dict(img_path=f'leftImg8bit/{split}',
                                              seg_map_path=f'gtFine/{split}'))
    return _finish('cityscapes',
                   root,
                   num_train,
                   num_val,
                   h,
                   w,
                   seed,
                   splits,
                   dataset_type='CityscapesDataset',
                   classes=list(CITYSCAPES_CLASSES),
                   ignore_index=255)


def make_voc(out_dir,
             num_train=24,
             num_val=8,
             size=(128, 160),
             seed=0,
             num_aug=None):
    """Write a PASCAL VOC 2012 (+ SBD "aug") layout dataset.

    ``out_dir`` plays the role of ``VOCdevkit/VOC2012``. ``SegmentationClass``
    holds palette PNGs with a 255 band on object outlines (as in VOC);
    ``SegmentationClassAug`` holds plain uint8 PNGs without the band (as
    converted from SBD) for the train images plus ``num_aug`` extra images
    that only appear in ``aug.txt``. Writes in place (``demo_data.json``
    last); use :func:`ensure_demo_data` for an atomic, cached build.

    Args:
        out_dir (str | Path): Dataset root (created if missing).
        num_train (int): Number of images in ``train.txt``.
        num_val (int): Number of images in ``val.txt``.
        size (tuple[int, int]): Image (height, width).
        seed (int): Non-negative random seed.
        num_aug (int, optional): Extra aug-only images; defaults to
            ``num_train // 2``.

    Returns:
        dict: Summary with ``splits`` (train, val, aug) giving ``ann_file``
        and ``data_prefix`` per split.
    """
    h, w = _check_params(num_train, num_val, size, seed)
    num_aug = num_train // 2 if num_aug is None else num_aug
    if isinstance(num_aug, bool) or not isinstance(
            num_aug, (int, np.integer)) or not 0 <= num_aug <= MAX_COUNT:
        raise DemoDataError(f'num_aug must be an integer in [0, {MAX_COUNT}]'
                            f', got {num_aug!r}')
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    palette = voc_palette()
    names = {'train': [], 'val': [], 'aug': []}
    for split, n in (('train', num_train), ('val', num_val), ('aug', num_aug)):
        for i in range(n):
            # VOC-style "2007_000123"; a per-split number block keeps names
            # unique and independent of the other splits' sizes.
            k = _SPLIT_CODE[split] * MAX_COUNT + i
            name = f'{2007 + i % 5}_{k:06d}'
            img, lbl, aug = _voc_sample(_rng(seed, 'voc', split, i), h, w)
            _write_jpg(root / 'JPEGImages' / f'{name}.jpg', img)
            if split != 'aug':
                _write_palette_png(root / 'SegmentationClass' / f'{name}.png',
                                   lbl, palette)
            if split != 'val':
                _imwrite(root / 'SegmentationClassAug' / f'{name}.png', aug)
            names[split].append(name)
    sets = root / 'ImageSets' / 'Segmentation'
    _write_list(sets / 'train.txt', names['train'])
    _write_list(sets / 'val.txt', names['val'])
    _write_list(sets / 'trainval.txt', names['train'] + names['val'])
    _write_list(sets / 'aug.txt', sorted(names['train'] + names['aug']))
    splits = {}
    for split in ('train', 'val', 'aug'):
        listed = names[split]
        if split == 'aug':
            listed = names['train'] + listed
        seg = 'SegmentationClassAug' if split == 'aug' else 'SegmentationClass'
        splits[split] = dict(num=len(listed),
                             ann_file=f'ImageSets/Segmentation/{split}.txt',
                             data_prefix=dict(img_path='JPEGImages',
                                              seg_map_path=seg))
    return _finish('voc',
                   root,
                   num_train,
                   num_val,
                   h,
                   w,
                   seed,
                   splits,
                   num_aug=int(num_aug),
                   dataset_type='PascalVOCDataset',
                   classes=list(VOC_CLASSES),
                   ignore_index=255)


def make_ade20k(out_dir, num_train=24, num_val=8, size=(128, 160), seed=0):
    """Write an ADE20K (ADEChallengeData2016) layout dataset.

    Annotation value 0 means "other" (mmseg's ``reduce_zero_label`` turns it
    into 255); values ``1..150`` are the ADE20K classes, of which the ones in
    :data:`ADE20K_USED_CLASSES` occur. Writes in place (``demo_data.json``
    last); use :func:`ensure_demo_data` for an atomic, cached build.

    Args:
        out_dir (str | Path): Dataset root (created if missing).
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        size (tuple[int, int]): Image (height, width).
        seed (int): Non-negative random seed.

    Returns:
        dict: Summary with ``splits`` giving ``data_prefix`` per split.
    """
    h, w = _check_params(num_train, num_val, size, seed)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, n, folder, tag in (('train', num_train, 'training', 'train'),
                                  ('val', num_val, 'validation', 'val')):
        for i in range(n):
            img, lbl = _ade_sample(_rng(seed, 'ade20k', split, i), h, w)
            name = f'ADE_{tag}_{i + 1:08d}'
            _write_jpg(root / 'images' / folder / f'{name}.jpg', img)
            _imwrite(root / 'annotations' / folder / f'{name}.png', lbl)
        splits[split] = dict(num=int(n),
                             data_prefix=dict(
                                 img_path=f'images/{folder}',
                                 seg_map_path=f'annotations/{folder}'))
    return _finish('ade20k',
                   root,
                   num_train,
                   num_val,
                   h,
                   w,
                   seed,
                   splits,
                   dataset_type='ADE20KDataset',
                   reduce_zero_label=True,
                   used_classes={
                       str(k): v
                       for k, v in ADE20K_USED_CLASSES.items()
                   },
                   ignore_index=255)


_MAKERS = {
    'cityscapes': make_cityscapes,
    'voc': make_voc,
    'ade20k': make_ade20k
}


# --------------------------------------------------------------------------
# Caching and atomic publication
def _read_manifest(root):
    try:
        with open(root / MANIFEST_NAME) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ensure_demo_data(layout='cityscapes',
                     out_dir=None,
                     num_train=None,
                     num_val=None,
                     size=None,
                     seed=0,
                     force=False):
    """Create a demo dataset atomically unless an identical one exists.

    The dataset is built in a hidden temporary sibling of ``out_dir`` and
    renamed into place only when complete (with ``demo_data.json`` written
    last), so an interrupted run never leaves a partial dataset behind.
    An existing ``out_dir`` is replaced only if it is empty or was made by
    this generator; any other non-empty folder is refused, even with
    ``force``.

    Args:
        layout (str): One of :data:`LAYOUTS`.
        out_dir (str | Path, optional): Target root; per-layout default.
        num_train (int, optional): Training images; per-layout default.
        num_val (int, optional): Validation images; per-layout default.
        size (tuple[int, int], optional): (height, width); per-layout
            default.
        seed (int): Non-negative random seed.
        force (bool): Rebuild even if a matching dataset exists.

    Returns:
        dict: The manifest/summary plus ``root`` (absolute path) and
        ``created`` (False when an existing dataset was reused).

    Raises:
        DemoDataError: On invalid parameters or an unsafe ``out_dir``.
    """
    if layout not in LAYOUTS:
        raise DemoDataError(f'layout must be one of {LAYOUTS}, got '
                            f'{layout!r}')
    d = DEFAULTS[layout]
    num_train = d['num_train'] if num_train is None else num_train
    num_val = d['num_val'] if num_val is None else num_val
    size = d['size'] if size is None else size
    h, w = _check_params(num_train, num_val, size, seed)
    target = Path(d['out'] if out_dir is None else out_dir).absolute()
    key = _manifest_key(layout, num_train, num_val, h, w, seed)
    if layout == 'voc':  # make_voc() may have been called with another value
        key['num_aug'] = num_train // 2

    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise DemoDataError(f'{target} exists and is not a directory')
        old = _read_manifest(target)
        if old is None and any(target.iterdir()):
            raise DemoDataError(
                f'{target} is a non-empty folder not made by this generator; '
                'refusing to replace it (remove it or choose another --out)')
        if old is not None and not force and all(
                old.get(k) == v for k, v in key.items()):
            old.update(root=str(target), created=False)
            return old

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f'.{target.name}.tmp-{os.getpid()}-' \
                          f'{uuid.uuid4().hex[:8]}'
    try:
        manifest = _MAKERS[layout](tmp,
                                   num_train=num_train,
                                   num_val=num_val,
                                   size=(h, w),
                                   seed=seed)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest.update(root=str(target), created=True)
    return manifest


def _publish(tmp, target):
    """Move the finished ``tmp`` folder to ``target``, replacing it."""
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        return
    # rename() cannot replace a non-empty directory, so the old one is moved
    # aside first; the target path is never a partially written dataset.
    trash = target.parent / f'.{target.name}.old-{uuid.uuid4().hex[:8]}'
    os.replace(target, trash)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(trash, target)
        raise
    if trash.is_symlink() or not trash.is_dir():
        trash.unlink()
    else:
        shutil.rmtree(trash, ignore_errors=True)


# --------------------------------------------------------------------------
# Command line
def parse_size(text):
    """Parse ``'HxW'`` (e.g. ``'128x256'``) into ``(height, width)``.

    Args:
        text (str): Size string.

    Returns:
        tuple[int, int]: Height and width.

    Raises:
        argparse.ArgumentTypeError: If malformed or out of range.
    """
    parts = str(text).lower().replace('*', 'x').split('x')
    try:
        if len(parts) != 2:
            raise ValueError
        h, w = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected HxW such as 128x256, got {text!r}')
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise argparse.ArgumentTypeError(
            f'each side must be between {MIN_SIDE} and {MAX_SIDE}, got '
            f'{text!r}')
    return h, w


def _count(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}')
    if not 1 <= n <= MAX_COUNT:
        raise argparse.ArgumentTypeError(
            f'must be between 1 and {MAX_COUNT}, got {n}')
    return n


def _seed(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}')
    if n < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {n}')
    return n


class _Parser(argparse.ArgumentParser):

    def error(self, message):
        # One line on stderr; the full usage is one --help away.
        self.exit(2, f'{self.prog}: error: {message}\n')


def _build_parser():
    p = _Parser(
        prog='make_demo_data',
        description='Generate a small seeded synthetic segmentation dataset '
        'in Cityscapes, PASCAL VOC 2012 (+aug) or ADE20K layout.')
    p.add_argument('--layout',
                   choices=LAYOUTS,
                   default='cityscapes',
                   help='on-disk layout (default: cityscapes)')
    p.add_argument('--out',
                   default=None,
                   help='dataset root (default: data/demo_<layout>)')
    p.add_argument('--num-train',
                   type=_count,
                   default=None,
                   help='training images (default: 24)')
    p.add_argument('--num-val',
                   type=_count,
                   default=None,
                   help='validation images (default: 8)')
    p.add_argument('--size',
                   type=parse_size,
                   default=None,
                   help='image size HxW (default: 128x256 for cityscapes, '
                   '128x160 otherwise)')
    p.add_argument('--seed',
                   type=_seed,
                   default=0,
                   help='random seed (default: 0)')
    p.add_argument('--force',
                   action='store_true',
                   help='rebuild even if an identical dataset exists')
    return p


def main(argv=None):
    """Command-line entry point.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        int: Exit code (0 success, 1 I/O failure, 2 bad arguments).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        info = ensure_demo_data(args.layout, args.out, args.num_train,
                                args.num_val, args.size, args.seed, args.force)
    except DemoDataError as e:
        print(f'{parser.prog}: error: {e}', file=sys.stderr)
        return 2
    except OSError as e:
        print(f'{parser.prog}: error: {e}', file=sys.stderr)
        return 1
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


if __name__ == '__main__':
    sys.exit(main())
