"""``tools/decode_genotype.py``: from a search to a ready-to-train config.

Source: a search ``work_dir`` (its ``genotype.json``; without one, α/β of
the latest checkpoint are decoded), a checkpoint file or a genotype JSON.

Output: the genotype JSON and a config delta whose ``_base_`` is the shipped
S retraining config for the dataset, holding what the options change
(mmengine's ``pretty_text``; a change inside a list writes the whole
list). Both paths in it are relative to the config file (the genotype
through ``{{ fileDirname }}``), so the pair can be moved together.

Every failure is one ``error:`` line and exit status 2, before anything is
written; each file is written atomically.
"""
import argparse
import copy
import os
import os.path as osp

from ..utils import atomic_write_text, exit_with_error
from ..utils.atomic import atomic_torch_save

#: Per dataset: the shipped S retraining config (relative to configs/).
DATASETS = {
    'cityscapes': 'autodeeplab/autodeeplab-s_paper-genotype_8xb2-1.5m_'
                  'cityscapes-769x769.py',
    'voc': 'autodeeplab/autodeeplab-s_paper-genotype_8xb2-1.5m_voc12aug-'
           '513x513.py',
    'ade20k': 'autodeeplab/autodeeplab-s_paper-genotype_8xb2-4m_ade20k-'
              '513x513.py',
    'custom': 'autodeeplab/autodeeplab-s_paper-genotype_8xb2-80k_custom-'
              '513x513.py',
}
_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: ``--smoke``: crops SMOKE_SIZE^2, resizes to 2·SMOKE_SIZE × SMOKE_SIZE.
SMOKE_SIZE = 64


def genotype_from_checkpoint(path, end_level=None):
    """Decode the genotype from a search checkpoint's α/β (read
    weights-only: nothing in the file can run)."""
    from ..search_space import GenotypeError, decode_genotype
    from ..utils.checkpoint import CheckpointError, safe_load_checkpoint
    try:
        ckpt = safe_load_checkpoint(path)
    except CheckpointError as e:
        exit_with_error(f'cannot read checkpoint: {e}')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        exit_with_error(f'{path}: not a checkpoint with a state_dict')
    arch = []
    for name in ('backbone.alphas', 'backbone.betas'):
        # the plain key before wrapped ones (module.backbone.*, ema, ...)
        keys = sorted((k for k in state if ('.' + k).endswith('.' + name)),
                      key=len)
        if not keys:
            exit_with_error(
                f'{path}: state_dict has no {name!r}; is this a search '
                '(AutoDeepLabSupernet) checkpoint?')
        arch.append(state[keys[0]])
    try:
        return decode_genotype(*arch, end_level=end_level)
    except (ValueError, GenotypeError) as e:
        exit_with_error(f'{path}: cannot decode α/β ({e})')


def load_source(source, end_level=None):
    """``(genotype, file it came from, its cost record or None)`` from a
    work_dir, checkpoint or genotype JSON (``.json`` in any letter case;
    read once: the genotype and the ``cost`` a budgeted search recorded
    beside it)."""
    from ..search_space import Genotype
    from ..search_space.genotype import read_json
    from ..utils.resume import find_resumable_checkpoint
    path = source
    if osp.isdir(source):
        path = osp.join(source, 'genotype.json')
        if not osp.isfile(path):
            # the checkpoint a resume would pick
            path = find_resumable_checkpoint(source, logger=lambda line: None)
            if path is None:
                exit_with_error(f'{source}: no genotype.json and no '
                                'checkpoint in this work_dir')
    elif not osp.isfile(source):
        exit_with_error(f'{source}: no such work_dir or checkpoint')
    if path.lower().endswith('.json'):
        data = read_json(path)
        cost = data.get('cost') if isinstance(data, dict) else None
        return Genotype.from_dict(data, source=path), path, cost
    return genotype_from_checkpoint(path, end_level), path, None


def cost_line(cost):
    """One line: the predicted cost a budgeted search recorded beside its
    genotype (GenotypeHook's ``cost``) vs its target, or None. The record
    is informational: a hand-edited, malformed one is skipped rather than
    failing a decode whose files are already written."""
    from ..arch_cost import format_cost
    if cost is None:
        return None
    try:
        kind, size = cost.get('kind', 'macs'), cost.get('input_size')
        line = f"cost:     {format_cost(cost['predicted'], kind)}" + (
            ' at {}x{}'.format(*size) if size else '')
        if cost.get('target'):
            line += (f"; target {format_cost(cost['target'], kind)} (ratio "
                     f"{cost['predicted'] / cost['target']:.2f})")
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    return line + ' (cost table of the search)'


def _leaves(cfg):
    """Every innermost dataset of every dataloader of ``cfg``."""
    from ..utils.checks import dataset_leaves
    return [leaf for loader in _LOADERS if loader in cfg
            for leaf in dataset_leaves(cfg[loader].get('dataset'))]


def _smoke(cfg, size=SMOKE_SIZE, iters=2):
    """A seconds-long run of ``cfg`` (with ``iters`` iterations): small
    resizes, crops, stem and head, validation and a checkpoint after
    ``iters``, no dataloader workers. The network (genotype, F, classes) is
    unchanged."""
    crop = (size, size)
    fields = {'RandomResize': ('scale', (2 * size, size)),
              'Resize': ('scale', (2 * size, size)),
              'RandomCrop': ('crop_size', crop), 'Pad': ('size', crop)}
    cfg.merge_from_dict({
        'model.data_preprocessor.size': crop,
        'model.backbone.stem_channels': (8, 8, 16),
        'model.decode_head.channels': 16,
        'model.decode_head.c1_channels': 8,
        'train_cfg.val_interval': iters,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': 1})
    for loader in _LOADERS:
        cfg[loader].update(num_workers=0, persistent_workers=False)
    for leaf in _leaves(cfg):
        for step in leaf.get('pipeline', []):
            if step.get('type') in fields:
                name, value = fields[step['type']]
                step[name] = value


def _diff(base, new):
    """The nested keys of ``new`` that differ from ``base`` (a config file
    merges dicts into its base's but replaces lists: lists go whole)."""
    out = {}
    for key, value in new.items():
        old = base.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            value = _diff(old, value)
            if value:
                out[key] = value
        elif key not in base or value != old:
            out[key] = value
    return out


def render_config(genotype, args, source):
    """The text of the config ``args.out``: a delta over the dataset's
    shipped config for ``genotype`` (saved at ``args.genotype_out``) with
    what ``args`` ask for."""
    from mmengine.config import Config

    from ..utils import find_project_config
    from ..utils.configs import resolve_config
    if len(genotype.path) < 3:
        exit_with_error(
            f'{source}: the genotype has {len(genotype.path)} layers; the '
            'DeepLabv3+ decoder needs Cell_2 (at least 3)')
    if args.base:
        try:
            base_path = resolve_config(args.base)
        except FileNotFoundError as e:
            exit_with_error(f'--base: {e}')
    else:
        base_path = find_project_config(DATASETS[args.dataset])
        if base_path is None:
            exit_with_error(f'cannot find the shipped config '
                            f'{DATASETS[args.dataset]}')
    base = Config.fromfile(base_path)
    args.filter_multiplier = args.filter_multiplier or \
        base.model.backbone.filter_multiplier
    cfg = copy.deepcopy(base)
    folder = osp.dirname(osp.abspath(args.out))
    # the head reads Cell_2 and the last cell; level j has B*F*2**j channels
    width = len(genotype.cell.blocks) * args.filter_multiplier
    cfg.model.backbone.update(
        genotype='{{ fileDirname }}/' + osp.relpath(
            osp.abspath(args.genotype_out), folder),
        filter_multiplier=args.filter_multiplier)
    cfg.model.decode_head.update(c1_in_channels=width * 2**genotype.path[2],
                                 in_channels=width * 2**genotype.path[-1])
    values = {k: getattr(args, k) for k in ('data_root', 'img_suffix',
                                            'seg_map_suffix')
              if getattr(args, k) is not None}
    if args.classes:
        values['metainfo'] = dict(classes=tuple(args.classes))
        if args.palette:
            values['metainfo']['palette'] = args.palette
        cfg.model.decode_head.num_classes = len(args.classes)
    for leaf in _leaves(cfg):
        leaf.update(copy.deepcopy(values))
    if args.work_dir:
        cfg.work_dir = args.work_dir
    if args.inherit:
        cfg.load_from = '{{ fileDirname }}/' + osp.relpath(
            osp.abspath(inherited_path(args)), folder)
    if args.smoke:
        _smoke(cfg)
    iters = args.max_iters or (2 if args.smoke else None)
    if iters:  # schedulers ending with the schedule follow it
        for sched in cfg.get('param_scheduler', []):
            if sched.get('end') == cfg.train_cfg.max_iters:
                sched.end = iters
        cfg.train_cfg.max_iters = iters
    try:
        cfg.merge_from_dict(args.cfg_options, allow_list_keys=True)
    except (KeyError, IndexError, ValueError, TypeError,
            AttributeError) as e:
        exit_with_error(f'cannot apply the options to {base_path} '
                        f'({type(e).__name__}: {e})')
    try:  # it formats and loads (from elsewhere: the absolute _base_)
        body = Config(_diff(base.to_dict(), cfg.to_dict())).pretty_text
        Config.fromstring(f'_base_ = {base_path!r}\n{body}', '.py')
    except Exception as e:
        exit_with_error(f'the written config would not load '
                        f'({type(e).__name__}: {e})')
    header = (f'# Auto-DeepLab retraining, F={args.filter_multiplier}, '
              f'{args.dataset}; written by tools/decode_genotype.py from\n'
              f'# {osp.relpath(osp.abspath(source), folder)}:\n# '
              + genotype.describe().replace('\n', '\n# ') + '\n'
              '# Paths are relative to this file. Train: mim train '
              'mmsegmentation THIS_CONFIG\n')
    model = copy.deepcopy(cfg.model)
    model.backbone.genotype = genotype.to_dict()
    return (f'{header}_base_ = {osp.relpath(base_path, folder)!r}\n{body}',
            model)


def inherited_path(args):
    """``<config>_inherited.pth`` beside ``--out``."""
    return osp.splitext(args.out)[0] + '_inherited.pth'


def inherited_weights(genotype, source, model_cfg):
    """The decoded segmentor's weights from a one-shot search ``source``
    (its work_dir or checkpoint; the config is the one .py beside it),
    checked by a strict load into ``model_cfg`` (the decoded config's
    model). Nothing in the checkpoint runs."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    from ..models.backbones.autodeeplab_oneshot import (activate_subnet,
                                                        subnet_state_dict)
    from ..utils.checkpoint import CheckpointError, safe_load_checkpoint
    from ..utils.resume import run_files
    config, ckpt = run_files(source)
    try:
        state = safe_load_checkpoint(ckpt)['state_dict']
    except (CheckpointError, KeyError, TypeError) as e:
        exit_with_error(f'--inherit: cannot read checkpoint {ckpt}: {e}')
    with DefaultScope.overwrite_default_scope('mmseg'):
        oneshot = MODELS.build(Config.fromfile(config).model)
        decoded = MODELS.build(model_cfg)
    if not hasattr(oneshot.backbone, 'activate'):
        exit_with_error(f'--inherit {source}: its model is not a one-shot '
                        '(AutoDeepLabOneShot) network')
    try:
        oneshot.load_state_dict(state, strict=True)
        activate_subnet(oneshot, genotype)
        weights = subnet_state_dict(oneshot)
        decoded.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError) as e:  # GenotypeError included
        exit_with_error(f'--inherit {source}: the one-shot does not give '
                        'the decoded network (match --base and -F to the '
                        f'one-shot config): {" ".join(str(e).split())[:300]}')
    return dict(state_dict={k: v.detach().clone() for k, v in
                            weights.items()},
                meta=dict(genotype=genotype.to_dict(), inherited_from=ckpt))


def _rgb(text):
    try:
        rgb = [int(p) for p in text.split(',')]
    except ValueError:
        rgb = []
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise argparse.ArgumentTypeError(
            f'expected R,G,B with values 0-255, got {text!r}')
    return rgb


def parse_args(argv=None):
    from mmengine.config import DictAction

    from ..analysis import OneLineParser
    p = OneLineParser(description='Decode a searched Auto-DeepLab genotype '
                      'and write a retraining config (a delta over the '
                      'shipped config).')
    p.add_argument('source', help='search work_dir, checkpoint (.pth) or '
                   'genotype JSON')
    p.add_argument('--dataset', default='cityscapes', choices=list(DATASETS),
                   help="target dataset ('custom': mmseg's img_dir/ann_dir "
                   'layout, with --classes)')
    p.add_argument('--filter-multiplier', '-F', type=int,
                   help='F of the retrained network (S/M/L: 20/32/48; '
                   "default: the base config's)")
    p.add_argument('--base', help='the retraining config to write the delta '
                   "over (default: the dataset's shipped S config)")
    p.add_argument('--inherit', metavar='ONESHOT', help='a one-shot '
                   'search work_dir or checkpoint: write its weights of the '
                   'decoded network beside --out (<config>_inherited.pth) '
                   'and load them in the config (load_from)')
    p.add_argument('--out', required=True, help='config file to write')
    p.add_argument('--genotype-out', help='genotype JSON to write (default: '
                   'next to --out, <config>_genotype.json)')
    p.add_argument('--data-root', help='data root of every dataset (as mmseg '
                   'resolves it: relative to where training runs, or '
                   'absolute)')
    p.add_argument('--work-dir', help='work_dir written into the config')
    p.add_argument('--classes', nargs='+', metavar='NAME',
                   help="class names, in label order ('custom' only)")
    p.add_argument('--palette', nargs='+', type=_rgb, metavar='R,G,B',
                   help="one colour per class (custom; default: mmseg's "
                   'random palette)')
    p.add_argument('--img-suffix',
                   help="image suffix ('custom', default '.jpg')")
    p.add_argument('--seg-map-suffix',
                   help="label suffix ('custom', default '.png')")
    p.add_argument('--end-level', type=int,
                   help='force the last level when decoding β')
    p.add_argument('--max-iters', type=int,
                   help='override the schedule length')
    p.add_argument('--smoke', action='store_true',
                   help=f'a tiny run: {SMOKE_SIZE}x{SMOKE_SIZE} crops, small '
                   'stem/head, 2 iterations with validation, no workers (to '
                   'check data and set-up in seconds)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   metavar='KEY=VALUE', help='further overrides written into '
                   'the config, as for mmseg tools (e.g. '
                   'train_dataloader.batch_size=4)')
    args = p.parse_args(argv)
    error = p.error
    custom = args.dataset == 'custom'
    if custom and not args.classes:
        error('--dataset custom needs --classes (the class names, in label '
              'order)')
    for flag in ('classes', 'palette', 'img_suffix', 'seg_map_suffix'):
        if not custom and getattr(args, flag) is not None:
            error(f'--{flag.replace("_", "-")} is for --dataset custom only '
                  f'(got --dataset {args.dataset})')
    if args.palette is not None and len(args.palette) != len(args.classes):
        error(f'--palette has {len(args.palette)} colours for '
              f'{len(args.classes)} classes')
    if len(set(args.classes or ())) != len(args.classes or ()):
        error('--classes: class names must be distinct')
    for flag in ('filter_multiplier', 'max_iters'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            error(f'--{flag.replace("_", "-")} must be positive, got {value}')
    if not args.out.endswith('.py'):
        error(f'--out must be a .py config path, got {args.out}')
    args.genotype_out = args.genotype_out or \
        osp.splitext(args.out)[0] + '_genotype.json'
    if osp.realpath(args.genotype_out) == osp.realpath(args.out):
        error(f'--genotype-out and --out are the same file ({args.out}); '
              'the genotype JSON and the config need two files')
    return args


def main(argv=None):
    """Decode, render and check, then write both files."""
    args = parse_args(argv)
    existed = {p for p in (args.genotype_out, inherited_path(args))
               if osp.exists(p)}
    import mmseg_autodeeplab  # noqa: F401  (compat fixes)
    from ..search_space import GenotypeError
    try:
        genotype, source, cost = load_source(args.source, args.end_level)
        text, model = render_config(genotype, args, source)
        weights = args.inherit and inherited_weights(genotype, args.inherit,
                                                     model)
        written = []
        try:
            if weights:
                written.append(inherited_path(args))
                atomic_torch_save(weights, written[-1])
            written.append(args.genotype_out)
            atomic_write_text(args.genotype_out, genotype.to_json())
            atomic_write_text(args.out, text)
        except BaseException:
            for path in written:  # leave no orphan behind
                if path not in existed:
                    os.remove(path)
            raise
    except (GenotypeError, OSError) as e:
        exit_with_error(str(e) or repr(e))
    print(genotype.describe())
    line = cost_line(cost)
    if line:
        print(line)
    print(f'genotype: {args.genotype_out}')
    if weights:
        print(f'weights:  {inherited_path(args)} (inherited from '
              f'{weights["meta"]["inherited_from"]}; the config loads it)')
    print(f'config:   {args.out}')
    print(f'train:    mim train mmsegmentation {args.out}')
    return 0
