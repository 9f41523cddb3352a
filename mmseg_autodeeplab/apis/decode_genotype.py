"""``tools/decode_genotype.py``: from a search to a ready-to-train config.

Source: a search ``work_dir`` (its ``genotype.json``; without one, α/β of
the latest checkpoint are decoded) or a checkpoint file (``backbone.alphas``
/ ``backbone.betas`` in its ``state_dict``). Output: the genotype JSON and a
retraining config that inherits mmseg's dataset/runtime bases and this
project's model base; ``mim train mmsegmentation CONFIG`` trains it as is.

Checkpoints are read with ``torch.load(weights_only=True)``. mmengine also
pickles its message hub (``HistoryBuffer`` with numpy arrays) into them; those
globals are mapped to an inert placeholder (:class:`_Opaque`) instead of being
allowed, so nothing from the file is ever executed, and only ``state_dict``
is used.

Every failure is one line on stderr and exit code 2; all output is rendered
and validated before anything is written, and each file is written
atomically, so no half-written output is left behind.
"""
import argparse
import os
import os.path as osp
import re
import sys

#: Per dataset: mmseg base config, classes, crop and the paper's schedule.
DATASETS = {
    'cityscapes': dict(
        base='mmseg::_base_/datasets/cityscapes_769x769.py',
        num_classes=19, crop_size=(769, 769), max_iters=1500000,
        tag='cityscapes-769x769'),
    'voc': dict(
        base='mmseg::_base_/datasets/pascal_voc12_aug.py',
        num_classes=21, crop_size=(513, 513), max_iters=1500000,
        tag='voc12aug-513x513'),
    'ade20k': dict(
        base='mmseg::_base_/datasets/ade20k.py',
        num_classes=150, crop_size=(513, 513), max_iters=4000000,
        tag='ade20k-513x513'),
}

_CKPT_RE = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


class DecodeError(Exception):
    """Bad input for the decode tool; the message is one line."""


class _Opaque:
    """Inert stand-in for non-tensor globals in a checkpoint (never runs
    anything; every call or state just gives another placeholder)."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Opaque()

    def __setstate__(self, state):
        pass


def load_checkpoint_state(path):
    """The ``state_dict`` of a checkpoint, read with ``weights_only=True``."""
    import torch
    if not osp.isfile(path):
        raise DecodeError(f'{path}: checkpoint not found')
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        with torch.serialization.safe_globals([(_Opaque, name)
                                               for name in unsafe]):
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # corrupt file, not a torch checkpoint, ...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise DecodeError(f'{path}: cannot read checkpoint '
                          f'({type(e).__name__}: {msg})') from None
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise DecodeError(f'{path}: not a checkpoint with a state_dict')
    return state


def _find_key(state, name):
    keys = [k for k in state if k == name or k.endswith('.' + name)]
    # prefer the plain key over wrapped ones (module.backbone.*, ema, ...)
    keys.sort(key=lambda k: (k != name, len(k)))
    return keys[0] if keys else None


def genotype_from_checkpoint(path, end_level=None):
    """Decode the genotype from a search checkpoint's α/β."""
    from ..search_space import GenotypeError, decode_genotype
    state = load_checkpoint_state(path)
    found = {}
    for name in ('backbone.alphas', 'backbone.betas'):
        key = _find_key(state, name)
        if key is None:
            raise DecodeError(
                f'{path}: state_dict has no {name!r}; is this a search '
                '(AutoDeepLabSupernet) checkpoint?')
        found[name] = state[key]
    try:
        return decode_genotype(found['backbone.alphas'],
                               found['backbone.betas'], end_level=end_level)
    except (ValueError, GenotypeError) as e:
        raise DecodeError(f'{path}: cannot decode α/β ({e})') from None


def latest_checkpoint(work_dir):
    """The work_dir's latest checkpoint (``last_checkpoint`` first)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker, encoding='utf-8') as f:
            path = f.read().strip()
        for candidate in (path, osp.join(work_dir, osp.basename(path))):
            if candidate and osp.isfile(candidate):
                return candidate
    numbered = []
    for name in os.listdir(work_dir):
        m = _CKPT_RE.match(name)
        if m and osp.isfile(osp.join(work_dir, name)):
            numbered.append((int(m.group(1)), name))
    if numbered:
        return osp.join(work_dir, max(numbered)[1])
    return None


def load_source(source, end_level=None):
    """``(genotype, description)`` from a work_dir or a checkpoint file."""
    from ..search_space import Genotype, GenotypeError
    if osp.isdir(source):
        path = osp.join(source, 'genotype.json')
        if osp.isfile(path):
            try:
                return Genotype.load(path), path
            except GenotypeError as e:
                raise DecodeError(str(e)) from None
        ckpt = latest_checkpoint(source)
        if ckpt is None:
            raise DecodeError(
                f'{source}: no genotype.json and no checkpoint in this '
                'work_dir')
        return genotype_from_checkpoint(ckpt, end_level), ckpt
    if osp.isfile(source):
        if source.endswith('.json'):
            try:
                return Genotype.load(source), source
            except GenotypeError as e:
                raise DecodeError(str(e)) from None
        return genotype_from_checkpoint(source, end_level), source
    raise DecodeError(f'{source}: no such work_dir or checkpoint')


def model_base_path():
    """Absolute path of this project's model base config."""
    from ..utils import find_project_config
    rel = osp.join('_base_', 'models', 'autodeeplab_net.py')
    path = find_project_config(rel)
    if path:
        return path
    raise DecodeError(f'cannot find the model base config {rel} (neither '
                      'in the repo nor in the installed package)')


def _train_data_cfg(dataset, crop_size):
    """Lines overriding the base's train pipeline to use ``crop_size``."""
    reduce = ', reduce_zero_label=True' if dataset == 'ade20k' else ''
    scale = '(2048, 1024)' if dataset == 'cityscapes' else '(2048, 512)'
    lines = [
        'train_pipeline = [',
        "    dict(type='LoadImageFromFile'),",
        f"    dict(type='LoadAnnotations'{reduce}),",
        f"    dict(type='RandomResize', scale={scale}, ratio_range=(0.5, 2.0),"
        ' keep_ratio=True),',
        "    dict(type='RandomCrop', crop_size=crop_size, "
        'cat_max_ratio=0.75),',
        "    dict(type='RandomFlip', prob=0.5),",
        "    dict(type='PhotoMetricDistortion'),",
        "    dict(type='Pad', size=crop_size),",
        "    dict(type='PackSegInputs')",
        ']',
    ]
    if dataset == 'voc':
        # mmseg's VOC-aug base is a ConcatDataset; lists replace (not merge),
        # so both parts are spelled out with the 513 pipeline.
        lines += [
            "_voc = dict(type='PascalVOCDataset', "
            "data_root='data/VOCdevkit/VOC2012', pipeline=train_pipeline)",
            'train_dataloader = dict(batch_size=2, num_workers=2, '
            'dataset=dict(',
            "    type='ConcatDataset', datasets=[",
            "        dict(_voc, data_prefix=dict(img_path='JPEGImages', "
            "seg_map_path='SegmentationClass'),",
            "             ann_file='ImageSets/Segmentation/train.txt'),",
            "        dict(_voc, data_prefix=dict(img_path='JPEGImages', "
            "seg_map_path='SegmentationClassAug'),",
            "             ann_file='ImageSets/Segmentation/aug.txt')]))",
        ]
    else:
        lines.append('train_dataloader = dict(batch_size=2, num_workers=2, '
                     'dataset=dict(pipeline=train_pipeline))')
    return lines


def render_config(genotype, genotype_path, dataset, filter_multiplier,
                  source='', max_iters=None):
    """The retraining config's text for ``genotype`` on ``dataset``."""
    if dataset not in DATASETS:
        raise DecodeError(f'unknown dataset {dataset!r}; expected one of '
                          f'{", ".join(DATASETS)}')
    info = DATASETS[dataset]
    max_iters = max_iters or info['max_iters']
    blocks = len(genotype.cell.blocks)
    path = genotype.path
    if len(path) < 3:
        raise DecodeError(f'the genotype has {len(path)} layers; the '
                          'DeepLabv3+ decoder needs Cell_2 (at least 3)')
    c1_channels = blocks * filter_multiplier * 2**path[2]
    in_channels = blocks * filter_multiplier * 2**path[-1]
    crop = info['crop_size']
    describe = '\n'.join('#   ' + line
                         for line in genotype.describe().splitlines())
    lines = [
        f'# Auto-DeepLab retraining, F={filter_multiplier}, on {dataset} '
        f'({crop[0]}x{crop[1]} crops), written by tools/decode_genotype.py',
        f'# from {source}.' if source else '#',
        '# Genotype:',
        describe,
        '# Train: mim train mmsegmentation THIS_CONFIG [--gpus N '
        '--launcher pytorch]',
        '_base_ = [',
        f'    {model_base_path()!r},',
        f"    {info['base']!r},",
        "    'mmseg::_base_/default_runtime.py'",
        ']',
        "custom_imports = dict(imports=['mmseg_autodeeplab'], "
        'allow_failed_imports=False)',
        '',
        f'crop_size = {crop!r}',
        f'max_iters = {max_iters}',
        f'num_classes = {info["num_classes"]}',
        '# Channels from the genotype: Cell_2 at stride '
        f'{genotype.path_strides[2]} -> {c1_channels}, last cell at stride '
        f'{genotype.path_strides[-1]} -> {in_channels}.',
        'model = dict(',
        '    data_preprocessor=dict(size=crop_size),',
        '    backbone=dict(',
        f'        genotype={osp.abspath(genotype_path)!r},',
        f'        filter_multiplier={filter_multiplier},',
        '        drop_path_prob=0.0),',
        f'    decode_head=dict(in_channels={in_channels}, '
        f'c1_in_channels={c1_channels}, num_classes=num_classes),',
        "    test_cfg=dict(mode='whole'))",
        '',
    ]
    if dataset != 'cityscapes':
        lines += _train_data_cfg(dataset, crop)
    else:
        lines.append('train_dataloader = dict(batch_size=2, num_workers=2)')
    lines += [
        '',
        '# Paper: poly LR from 0.05; SGD momentum 0.9 and weight decay 4e-5 '
        '(TF DeepLab).',
        'optim_wrapper = dict(',
        "    type='OptimWrapper',",
        "    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, "
        'weight_decay=4e-5),',
        '    clip_grad=None,',
        '    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))',
        'param_scheduler = [',
        "    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, "
        'end=max_iters, by_epoch=False)',
        ']',
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, "
        'val_interval=50000)',
        "val_cfg = dict(type='ValLoop')",
        "test_cfg = dict(type='TestLoop')",
        'default_hooks = dict(',
        "    logger=dict(type='LoggerHook', interval=50, "
        'log_metric_by_epoch=False),',
        "    checkpoint=dict(type='CheckpointHook', by_epoch=False, "
        'interval=50000, max_keep_ckpts=3))',
        "custom_hooks = [dict(type='DropPathScheduleHook')]",
        '',
    ]
    return '\n'.join(lines)


def default_genotype_out(config_out):
    stem = osp.splitext(config_out)[0]
    return stem + '_genotype.json'


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr, exit code 2."""

    def error(self, message):
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)


def parse_args(argv=None):
    parser = _OneLineParser(
        description='Decode a searched Auto-DeepLab genotype and write a '
        'retraining config.')
    parser.add_argument('source', help='search work_dir, checkpoint (.pth) '
                        'or genotype JSON')
    parser.add_argument('--dataset', default='cityscapes',
                        choices=list(DATASETS), help='target dataset')
    parser.add_argument('--filter-multiplier', '-F', type=int, default=20,
                        help='F of the retrained network (S/M/L: 20/32/48)')
    parser.add_argument('--out', required=True, help='config file to write')
    parser.add_argument('--genotype-out', help='genotype JSON to write '
                        '(default: next to --out, <config>_genotype.json)')
    parser.add_argument('--end-level', type=int, default=None,
                        help='force the last level when decoding β')
    parser.add_argument('--max-iters', type=int, default=None,
                        help='override the paper schedule length')
    return parser.parse_args(argv)


def run(args):
    """Decode, render, validate, then write both files. Returns paths."""
    from ..search_space import Genotype
    from ..utils import atomic_write_text
    if args.filter_multiplier <= 0:
        raise DecodeError('--filter-multiplier must be positive, got '
                          f'{args.filter_multiplier}')
    if args.max_iters is not None and args.max_iters <= 0:
        raise DecodeError(f'--max-iters must be positive, got '
                          f'{args.max_iters}')
    if not args.out.endswith('.py'):
        raise DecodeError(f'--out must be a .py config path, got {args.out}')
    genotype, source = load_source(args.source, args.end_level)
    genotype_out = args.genotype_out or default_genotype_out(args.out)
    text = render_config(genotype, genotype_out, args.dataset,
                         args.filter_multiplier, source, args.max_iters)
    # Round-trip check before writing anything.
    Genotype.from_json(genotype.to_json(), source=genotype_out)
    compile(text, args.out, 'exec')
    existed = osp.exists(genotype_out)
    atomic_write_text(genotype_out, genotype.to_json())
    try:
        atomic_write_text(args.out, text)
    except BaseException:
        if not existed:  # leave no orphan genotype behind
            os.remove(genotype_out)
        raise
    return genotype, genotype_out, args.out


def main(argv=None):
    args = parse_args(argv)
    import mmseg_autodeeplab  # noqa: F401  (compat fixes)
    from ..search_space import GenotypeError
    try:
        genotype, genotype_out, config_out = run(args)
    except (DecodeError, GenotypeError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        print(f'error: {msg}', file=sys.stderr)
        return 2
    print(genotype.describe())
    print(f'genotype: {genotype_out}')
    print(f'config:   {config_out}')
    print(f'train:    mim train mmsegmentation {config_out}')
    return 0
