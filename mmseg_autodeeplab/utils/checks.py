"""Pre-flight checks: stop on bad input with one line, before any work."""
import inspect
import os
import os.path as osp


class ConfigError(ValueError):
    """A user mistake in a config or its inputs (one-line message)."""


def is_integer(value, minimum=None):
    """Whether ``value`` is an ``int`` (a ``bool`` is not) ``>= minimum``:
    the one test behind every "expected a positive integer" message."""
    return isinstance(value, int) and not isinstance(value, bool) and (
        minimum is None or value >= minimum)


def dataset_leaves(cfg):
    """Yield the innermost dataset configs of a (wrapped) dataset config."""
    if not isinstance(cfg, dict):
        return
    if isinstance(cfg.get('dataset'), dict):
        yield from dataset_leaves(cfg['dataset'])
    elif isinstance(cfg.get('datasets'), (list, tuple)):
        for sub in cfg['datasets']:
            yield from dataset_leaves(sub)
    else:
        yield cfg


def _data_dir(leaf, key):
    """``(folder, suffix)`` of a dataset config's images (``key='img'``) or
    labels (``'seg_map'``); the suffix defaults to the dataset class's."""
    from mmseg.registry import DATASETS
    cls = DATASETS.get(leaf['type']) if leaf.get('type') else None
    param = cls and inspect.signature(cls.__init__).parameters.get(
        f'{key}_suffix')
    suffix = leaf.get(f'{key}_suffix', param.default if param else None)
    prefix = leaf.get('data_prefix') or {}
    return osp.join(leaf.get('data_root', ''),
                    prefix.get(f'{key}_path', '')), suffix


def _first_file(folder, suffix, limit=100000):
    """The first ``*suffix`` file under ``folder`` (None after ``limit``
    folders without one)."""
    for seen, (dirpath, _, files) in enumerate(os.walk(folder,
                                                       followlinks=True)):
        for name in sorted(files):
            if name.endswith(suffix or ''):
                return osp.join(dirpath, name)
        if seen > limit:
            break
    return None


_HINT = ('; generate a small one with `python tools/make_demo_data.py` or '
         'fix data_root')


def check_dataset_cfg(cfg, where):
    """Check that a dataset config points at a real, correctly laid out root.

    Args:
        cfg (dict): dataset config (wrappers such as SearchSplitDataset are
            unwrapped).
        where (str): config key, for the message (e.g. 'train_dataloader').

    Raises:
        ConfigError: naming the missing folder/file and the expected layout.
    """
    for leaf in dataset_leaves(cfg):
        root = leaf.get('data_root', '')
        name = f'{where}.dataset ({leaf.get("type")})'
        if root and not osp.isdir(root):
            raise ConfigError(f'{name}: data_root {root!r} does not exist'
                              + _HINT)
        ann = leaf.get('ann_file', '')
        if ann:
            ann_path = ann if osp.isabs(ann) else osp.join(root, ann)
            if not osp.isfile(ann_path):
                raise ConfigError(f'{name}: ann_file {ann_path!r} not found'
                                  + _HINT)
        for key, what in (('img', 'images'), ('seg_map', 'labels')):
            folder, suffix = _data_dir(leaf, key)
            if not osp.isdir(folder):
                raise ConfigError(
                    f'{name}: {what} folder {folder!r} does not exist '
                    f'(expected *{suffix or ""} files there)' + _HINT)
            if suffix and not ann and not _first_file(folder, suffix):
                raise ConfigError(
                    f'{name}: no *{suffix} {what} under {folder!r}' + _HINT)


def sync_search_channels(cfg):
    """Derive neck/head channels of a supernet config from F, B, levels.

    Keeps ``--cfg-options model.backbone.filter_multiplier=4`` a one-key
    change: the ASPP input is ``B*F*2**j`` and the head input three times
    the ASPP branch width.
    """
    model = cfg.get('model', {})
    backbone = model.get('backbone', {})
    if backbone.get('type') not in ('AutoDeepLabSupernet',
                                    'mmseg.AutoDeepLabSupernet'):
        return cfg
    levels = backbone.get('num_levels', 4)
    base = backbone.get('num_blocks', 5) * backbone.get(
        'filter_multiplier', 8)
    chans = [base * 2**j for j in range(levels)]
    neck = model.get('neck')
    if isinstance(neck, dict) and neck.get('type') in (
            'AutoDeepLabSearchASPP', 'mmseg.AutoDeepLabSearchASPP'):
        neck['in_channels'] = chans
        neck['strides'] = tuple(4 * 2**j for j in range(levels))
        branch = neck.get('channels') or chans
        head = model.get('decode_head')
        if isinstance(head, dict):
            head['in_channels'] = [3 * c for c in branch]
    return cfg


def _size_after_resizes(size, pipeline):
    """(w, h) of an image of ``size`` after the pipeline's smallest resize."""
    from mmcv.image import rescale_size
    w, h = size
    for t in pipeline or []:
        kind = t.get('type') if isinstance(t, dict) else None
        if kind not in ('Resize', 'RandomResize') or 'scale' not in t:
            continue
        scale = t['scale']
        if kind == 'RandomResize' and t.get('ratio_range'):
            low = min(t['ratio_range'])
            scale = (int(scale[0] * low), int(scale[1] * low))
        if t.get('keep_ratio', kind == 'RandomResize'):
            w, h = rescale_size((w, h), tuple(scale))
        else:
            w, h = scale
    return w, h


def crop_warning(cfg):
    """A warning line if the train crop exceeds the (resized) images.

    mmseg's RandomCrop then crops the whole image and the data preprocessor
    pads it, so part of every batch is padding: legal, rarely intended.

    Returns:
        str | None: the warning, or None when the crop fits (or the size
        cannot be told cheaply).
    """
    loader = cfg.get('train_dataloader') or {}
    leaves = list(dataset_leaves(loader.get('dataset', {})))
    if not leaves:
        return None
    leaf = leaves[0]
    pipeline = leaf.get('pipeline') or []
    crops = [t.get('crop_size') for t in pipeline
             if isinstance(t, dict) and t.get('type') == 'RandomCrop']
    if not crops or not crops[0]:
        return None
    crop_h, crop_w = crops[0]
    img_dir, suffix = _data_dir(leaf, 'img')
    first = _first_file(img_dir, suffix) if osp.isdir(img_dir) else None
    if first is None:
        return None
    try:
        from PIL import Image
        with Image.open(first) as im:
            size = im.size  # (w, h), header only
    except Exception:
        return None
    w, h = _size_after_resizes(size, pipeline)
    if crop_h > h or crop_w > w:
        return (f'train_dataloader: crop {crop_h}x{crop_w} is larger than '
                f'the training images after resizing ({h}x{w}, e.g. {first}); '
                'every batch will be partly padding')
    return None
