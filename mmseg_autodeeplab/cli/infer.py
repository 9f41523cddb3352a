"""``tools/infer.py``: segment images with mmseg's own ``MMSegInferencer``.

For each input image ``NAME.ext`` it writes, under ``--out``,
``pred/NAME.png``: the label map (class indices, uint8, or 16-bit for more
than 256 classes; the format of mmseg's datasets), and ``vis/NAME.png``: the
image with the prediction blended over it in the dataset's palette. Model,
test pipeline and visualizer come from the config through
``MMSegInferencer``; this tool adds what a batch job needs: folders of
images, names that follow the inputs, a progress bar, the dataset's classes
when a checkpoint lacks them, a checkpoint that must fit the config.
"""
import os
import os.path as osp
import sys

import numpy as np

from ..analysis import OneLineParser, load_segmentor
from ..utils import atomic_write_bytes, error_line

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def list_images(inputs):
    """Image files from paths and folders (a folder: the images anywhere
    below it, sorted)."""
    images = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(root, name)
                           for root, _, names in os.walk(item)
                           for name in names
                           if name.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise ValueError(f'{item}: no images '
                                 f'({", ".join(IMAGE_SUFFIXES)}) in this '
                                 'folder')
            images += found
        elif osp.isfile(item):
            images.append(item)
        else:
            raise ValueError(f'{item}: no such image or folder')
    return images


def output_names(images):
    """A distinct output stem per image (``name``, ``name_1``, ...)."""
    seen, names = {}, []
    for path in images:
        stem = osp.splitext(osp.basename(path))[0]
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(stem if count == 0 else f'{stem}_{count}')
    return names


def config_dataset_meta(cfg):
    """``(classes, palette)`` of the config's test dataset (None if unknown).

    The dataset class's ``METAINFO`` updated with the config's ``metainfo``;
    a missing palette is drawn from a fixed seed, so reruns match.
    """
    from mmseg.registry import DATASETS
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    dataset = loader.get('dataset', {}) if isinstance(loader, dict) else {}
    while isinstance(dataset.get('dataset'), dict):  # dataset wrappers
        dataset = dataset['dataset']
    cls = DATASETS.get(dataset.get('type', '')) if dataset else None
    meta = dict(getattr(cls, 'METAINFO', {}) or {})
    meta.update(dataset.get('metainfo') or {})
    classes = meta.get('classes')
    if not classes:
        return None, None
    palette = meta.get('palette')
    if not palette or len(palette) < len(classes):
        rng = np.random.RandomState(0)
        palette = rng.randint(0, 256, (len(classes), 3)).tolist()
    return list(classes), [list(c) for c in palette]


def _png(array):
    import cv2
    ok, buf = cv2.imencode('.png', array)
    assert ok
    return buf.tobytes()


def build_inferencer(config, checkpoint, device='cpu', cfg_options=None):
    """``MMSegInferencer`` for ``config`` + ``checkpoint``, checked first
    (:func:`~mmseg_autodeeplab.analysis.load_segmentor`); the classes and
    palette are the checkpoint's, else the config's dataset's."""
    from mmseg.apis import MMSegInferencer
    model, cfg = load_segmentor(config, checkpoint, cfg_options)
    meta = model.dataset_meta or {}
    classes, palette = meta.get('classes'), meta.get('palette')
    if not classes:
        classes, palette = config_dataset_meta(cfg)
    return MMSegInferencer(model=cfg, weights=checkpoint, classes=classes,
                           palette=palette, device=device)


def infer_images(inferencer, images, out_dir, opacity=0.5, with_labels=False,
                 progress=True):
    """Segment ``images`` and write ``pred/`` and ``vis/`` under ``out_dir``.

    Returns:
        list[tuple[str, str]]: ``(prediction png, overlay png)`` per image.
    """
    from rich.progress import track
    inferencer.show_progress = False  # one bar for the whole run, below
    num_classes = len(inferencer.visualizer.dataset_meta.get('classes') or ())
    written = []
    pairs = list(zip(images, output_names(images)))
    for path, name in (track(pairs, description='Segmenting')
                       if progress else pairs):
        result = inferencer(path, return_vis=True, opacity=opacity,
                            with_labels=with_labels)
        pred_file = osp.join(out_dir, 'pred', name + '.png')
        vis_file = osp.join(out_dir, 'vis', name + '.png')
        atomic_write_bytes(pred_file, _png(result['predictions'].astype(
            np.uint8 if num_classes <= 256 else np.uint16)))
        atomic_write_bytes(vis_file, _png(result['visualization'][..., ::-1]))
        written.append((pred_file, vis_file))
    return written


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = OneLineParser(
        description='Segment images with a config + checkpoint through '
        "mmseg's MMSegInferencer; writes label PNGs and colour overlays.")
    parser.add_argument('config', help='model config (e.g. a decoded one)')
    parser.add_argument('checkpoint', help='checkpoint (.pth)')
    parser.add_argument('images', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument('--out', required=True,
                        help='output folder (pred/ and vis/ inside)')
    parser.add_argument('--device', default='cpu', help="e.g. 'cuda:0'")
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='overlay opacity of the prediction (0-1)')
    parser.add_argument('--with-labels', action='store_true',
                        help='write class names onto the overlays')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        metavar='KEY=VALUE', help='config overrides')
    args = parser.parse_args(argv)
    if not 0 <= args.opacity <= 1:
        parser.error(f'--opacity must be in [0, 1], got {args.opacity}')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        images = list_images(args.images)
        inferencer = build_inferencer(args.config, args.checkpoint,
                                      args.device, args.cfg_options)
        written = infer_images(inferencer, images, args.out, args.opacity,
                               args.with_labels,
                               progress=not args.no_progress)
    except (ValueError, OSError) as e:
        print(f'error: {error_line(e)}', file=sys.stderr)  # rc, no SystemExit
        return 2
    print(f'{len(written)} images: label maps in '
          f'{osp.join(args.out, "pred")}, overlays in '
          f'{osp.join(args.out, "vis")}')
    return 0
