"""``tools/decode_genotype.py``: from a search to a ready-to-train config.

Source: a search ``work_dir`` (its ``genotype.json``; without one, α/β of
the latest checkpoint are decoded), a checkpoint file (``backbone.alphas``
/ ``backbone.betas`` in its ``state_dict``) or a genotype JSON file.

Output: the genotype JSON and a small config whose ``_base_`` is the shipped
retraining config for the dataset (``configs/autodeeplab/autodeeplab-s_*``:
same loops, hooks, schedule, ``save_best='mIoU'``, checkpoint check) and
which sets only what differs: the genotype file, F and the head's channels,
and whatever ``--data-root``, ``--work-dir``, ``--max-iters`` and
``--cfg-options`` ask for. Both paths in it are relative to the config file
(``_base_`` is resolved that way by mmengine, the genotype through
``{{ fileDirname }}``), so the pair can be moved together within the
project, committed and shared. ``mim train mmsegmentation CONFIG`` trains it.

Every failure is one ``error:`` line on stderr and exit status 2; all output
is rendered and validated before anything is written, and each file is
written atomically, so no half-written output is left behind.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys

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


class DecodeError(Exception):
    """Bad input for the decode tool; the message is one line."""


def load_checkpoint_state(path):
    """The ``state_dict`` of a checkpoint file.

    Read by :func:`~mmseg_autodeeplab.utils.checkpoint.safe_load_checkpoint`
    (weights-only, nothing allow-listed: nothing in the file can run).
    """
    from ..utils.checkpoint import CheckpointError, safe_load_checkpoint
    if not osp.isfile(path):
        raise DecodeError(f'{path}: checkpoint not found')
    try:
        ckpt = safe_load_checkpoint(path)
    except CheckpointError as e:
        raise DecodeError(f'cannot read checkpoint: {e}') from None
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


def _load_json(path):
    from ..search_space import Genotype, GenotypeError
    try:
        return Genotype.load(path), path
    except GenotypeError as e:
        raise DecodeError(str(e)) from None


def load_source(source, end_level=None):
    """``(genotype, file it came from)`` from a work_dir, checkpoint or
    genotype JSON (``.json`` in any letter case)."""
    if osp.isdir(source):
        path = osp.join(source, 'genotype.json')
        if osp.isfile(path):
            return _load_json(path)
        # the same choice as a resume: the intact checkpoint with the
        # highest iteration recorded inside it
        from ..utils.resume import find_resumable_checkpoint
        ckpt = find_resumable_checkpoint(source, logger=lambda line: None)
        if ckpt is None:
            raise DecodeError(
                f'{source}: no genotype.json and no checkpoint in this '
                'work_dir')
        return genotype_from_checkpoint(ckpt, end_level), ckpt
    if osp.isfile(source):
        if source.lower().endswith('.json'):
            return _load_json(source)
        return genotype_from_checkpoint(source, end_level), source
    raise DecodeError(f'{source}: no such work_dir or checkpoint')


def recorded_cost(path):
    """The ``cost`` record a budgeted search writes into its genotype
    JSON files (``dict(kind, predicted, target, ...)``), or None."""
    if not path.lower().endswith('.json'):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            cost = json.load(f).get('cost')
        return cost if isinstance(cost, dict) and isinstance(
            cost.get('predicted'), (int, float)) else None
    except (OSError, ValueError, AttributeError):
        return None


def cost_line(cost):
    """One line: predicted cost of the decoded network vs the target."""
    from ..arch_cost import format_cost
    kind = cost.get('kind', 'macs')
    size = cost.get('input_size')
    at = f' at {size[0]}x{size[1]}' if isinstance(size, list) and \
        len(size) == 2 else ''
    line = f"cost:     {format_cost(cost['predicted'], kind)}{at}"
    target = cost.get('target')
    if isinstance(target, (int, float)) and target > 0:
        line += (f"; target {format_cost(target, kind)} (ratio "
                 f"{cost['predicted'] / target:.2f})")
    return line + ' (cost table of the search)'


def base_config_path(dataset):
    """Absolute path of the shipped retraining config for ``dataset``."""
    from ..utils import find_project_config
    if dataset not in DATASETS:
        raise DecodeError(f'unknown dataset {dataset!r}; expected one of '
                          f'{", ".join(DATASETS)}')
    path = find_project_config(DATASETS[dataset])
    if path is None:
        raise DecodeError(f'cannot find the shipped config {DATASETS[dataset]}'
                          ' (neither in the repo nor in the installed '
                          'package)')
    return path


def head_channels(genotype, filter_multiplier):
    """``(c1_in_channels, in_channels)`` of the head for this genotype.

    The backbone returns Cell_2 (low-level feature) and the last cell; a
    cell at level ``j`` has ``B * F * 2**j`` channels.
    """
    blocks = len(genotype.cell.blocks)
    return (blocks * filter_multiplier * 2**genotype.path[2],
            blocks * filter_multiplier * 2**genotype.path[-1])


def _dataset_leaves(cfg, prefix):
    """``(dotted key, dataset cfg)`` of every innermost dataset."""
    if not isinstance(cfg, dict):
        return
    if isinstance(cfg.get('dataset'), dict):
        yield from _dataset_leaves(cfg['dataset'], prefix + '.dataset')
    elif isinstance(cfg.get('datasets'), (list, tuple)):
        for i, sub in enumerate(cfg['datasets']):
            yield from _dataset_leaves(sub, f'{prefix}.datasets.{i}')
    else:
        yield prefix, cfg


def dataset_options(base, data_root=None, classes=None, palette=None,
                    img_suffix=None, seg_map_suffix=None):
    """cfg-options setting these on every dataset of every dataloader."""
    values = {}
    if data_root is not None:
        values['data_root'] = data_root
    if classes is not None:
        values['metainfo'] = dict(classes=tuple(classes))
        if palette is not None:
            values['metainfo']['palette'] = [list(c) for c in palette]
    if img_suffix is not None:
        values['img_suffix'] = img_suffix
    if seg_map_suffix is not None:
        values['seg_map_suffix'] = seg_map_suffix
    options = {}
    for loader in _LOADERS:
        if loader not in base:
            continue
        for key, _ in _dataset_leaves(base[loader].get('dataset'),
                                      loader + '.dataset'):
            for name, value in values.items():
                options[f'{key}.{name}'] = value
    return options


#: ``--smoke``: image side of the tiny run (crops SMOKE_SIZE^2, resizes to
#: 2·SMOKE_SIZE × SMOKE_SIZE), 2 iterations, no worker processes.
SMOKE_SIZE = 64


def smoke_options(base, size=SMOKE_SIZE, iters=2):
    """cfg-options turning a retraining config into a seconds-long run.

    Small resizes and crops in every dataset pipeline, a small stem and
    head, ``iters`` iterations with validation and a checkpoint at the end,
    no dataloader workers. What the network is (genotype, F, classes) is
    left alone.
    """
    crop, scale = (size, size), (2 * size, size)
    per_transform = {'RandomResize': ('scale', scale),
                     'Resize': ('scale', scale),
                     'RandomCrop': ('crop_size', crop),
                     'Pad': ('size', crop)}
    opts = {
        'model.data_preprocessor.size': crop,
        'model.backbone.stem_channels': (8, 8, 16),
        'model.decode_head.channels': 16,
        'model.decode_head.c1_channels': 8,
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': 1,
    }
    for i, sched in enumerate(base.get('param_scheduler', [])):
        if sched.get('end') == base.train_cfg.get('max_iters'):
            opts[f'param_scheduler.{i}.end'] = iters
    for loader in _LOADERS:
        if loader not in base:
            continue
        opts[f'{loader}.num_workers'] = 0
        opts[f'{loader}.persistent_workers'] = False
        for key, leaf in _dataset_leaves(base[loader].get('dataset'),
                                         loader + '.dataset'):
            for i, step in enumerate(leaf.get('pipeline', [])):
                if step.get('type') in per_transform:
                    name, value = per_transform[step['type']]
                    opts[f'{key}.pipeline.{i}.{name}'] = value
    return opts


def _plain(obj):
    """ConfigDicts and tuples-of-ConfigDicts as plain containers."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _get(tree, parts):
    for part in parts:
        if isinstance(tree, dict):
            tree = tree[part]
        else:
            tree = tree[int(part)]
    return tree


def delta(base, options):
    """The smallest file-level delta over ``base`` that ``options`` make.

    A config file merges dicts into its base's dicts but REPLACES lists, so
    an option inside a list (``param_scheduler.0.end``, a VOC ConcatDataset
    member) is written as the whole list, taken from the base with every
    option applied.

    Args:
        base (Config): the loaded base config.
        options (dict): dotted keys -> values, as ``--cfg-options`` gives.

    Returns:
        dict: nested top-level keys -> values.
    """
    merged = copy.deepcopy(base)
    merged.merge_from_dict(copy.deepcopy(options), allow_list_keys=True)
    merged = _plain(merged._cfg_dict.to_dict())
    plain_base = _plain(base._cfg_dict.to_dict())
    out = {}
    for key in options:
        parts = key.split('.')
        cut = len(parts)
        for i in range(1, len(parts)):
            try:
                sub = _get(plain_base, parts[:i])
            except (KeyError, IndexError, ValueError, TypeError):
                cut = i  # a new key: written whole from here
                break
            if not isinstance(sub, dict):
                cut = i
                break
        node = out
        for part in parts[:cut - 1]:
            node = node.setdefault(part, {})
        node[parts[cut - 1]] = _get(merged, parts[:cut])
    return out


def _is_identifier_dict(obj):
    return isinstance(obj, dict) and all(
        isinstance(k, str) and k.isidentifier() for k in obj)


def _format(value, indent=0, width=79, refs=None):
    """``value`` as config source: ``dict(k=v)``, wrapped at ``width``.

    A list equal to one of ``refs`` (base variable name -> value) is written
    as ``{{_base_.NAME}}``, which mmengine replaces by the base's value.
    """
    for name, ref in (refs or {}).items():
        if isinstance(value, list) and value == ref:
            return '{{_base_.%s}}' % name
    pad = ' ' * (indent + 4)
    if _is_identifier_dict(value):
        items = [f'{k}={_format(v, indent + 4, width, refs)}'
                 for k, v in value.items()]
        opening, closing = 'dict(', ')'
    elif isinstance(value, dict):
        items = [f'{k!r}: {_format(v, indent + 4, width, refs)}'
                 for k, v in value.items()]
        opening, closing = '{', '}'
    elif isinstance(value, list):
        items = [_format(v, indent + 4, width, refs) for v in value]
        opening, closing = '[', ']'
    else:
        return repr(value)
    one_line = opening + ', '.join(items) + closing
    if '\n' not in one_line and indent + len(one_line) <= width - 10:
        return one_line
    return (opening + '\n' + ''.join(f'{pad}{item},\n' for item in items)
            + ' ' * indent + closing)


def format_config(body, base=None):
    """Top-level ``key = value`` lines of a config delta."""
    refs = {}
    if base is not None:
        refs = {k: _plain(v) for k, v in base.items()
                if isinstance(v, list) and k not in body}
    return ''.join(f'{key} = {_format(value, refs=refs)}\n'
                   for key, value in body.items())


def render_config(genotype, genotype_path, config_path, dataset,
                  filter_multiplier, source='', options=None):
    """The retraining config's text (a delta over the shipped config).

    Args:
        genotype (Genotype): the network to retrain.
        genotype_path (str): where the genotype JSON will be.
        config_path (str): where this config will be (paths in it are
            relative to its folder).
        dataset (str): a key of :data:`DATASETS`.
        filter_multiplier (int): F.
        source (str): where the genotype came from (a comment).
        options (dict): further dotted keys -> values (data root, classes,
            work_dir, schedule, ``--cfg-options``).

    Returns:
        str: Python config text.
    """
    from mmengine.config import Config
    if len(genotype.path) < 3:
        raise DecodeError(
            f'{source or "genotype"}: the genotype has {len(genotype.path)} '
            'layers; the DeepLabv3+ decoder needs Cell_2 (at least 3)')
    base_path = base_config_path(dataset)
    base = Config.fromfile(base_path)
    c1, last = head_channels(genotype, filter_multiplier)
    folder = osp.dirname(osp.abspath(config_path))
    genotype_rel = osp.relpath(osp.abspath(genotype_path), folder)
    opts = {
        'model.backbone.genotype': '{{ fileDirname }}/' + genotype_rel,
        'model.backbone.filter_multiplier': filter_multiplier,
        'model.decode_head.in_channels': last,
        'model.decode_head.c1_in_channels': c1,
    }
    opts.update(options or {})
    try:
        body = delta(base, opts)
    except (KeyError, IndexError, ValueError, TypeError,
            AttributeError) as e:
        raise DecodeError(f'cannot apply the options to {base_path} '
                          f'({type(e).__name__}: {e})') from None
    body_text = format_config(body, base)
    describe = '\n'.join('#   ' + line
                         for line in genotype.describe().splitlines())
    header = [
        '# Auto-DeepLab retraining of a searched genotype, '
        f'F={filter_multiplier}, {dataset}; written by '
        'tools/decode_genotype.py',
        f'# from {osp.relpath(osp.abspath(source), folder)}.' if source
        else '#',
        '# Genotype:',
        describe,
        f'# Channels: Cell_2 at stride {genotype.path_strides[2]} -> {c1}, '
        f'last cell at stride {genotype.path_strides[-1]} -> {last}.',
        '# Paths are relative to this file. Train: mim train mmsegmentation '
        'THIS_CONFIG',
        f'_base_ = {osp.relpath(base_path, folder)!r}',
    ]
    return '\n'.join(header) + '\n' + body_text


def default_genotype_out(config_out):
    stem = osp.splitext(config_out)[0]
    return stem + '_genotype.json'


def _rgb(text):
    parts = text.split(',')
    try:
        rgb = [int(p) for p in parts]
    except ValueError:
        rgb = []
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise argparse.ArgumentTypeError(
            f'expected R,G,B with values 0-255, got {text!r}')
    return rgb


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr, exit code 2."""

    def error(self, message):
        from ..utils import exit_with_error
        exit_with_error(message)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = _OneLineParser(
        description='Decode a searched Auto-DeepLab genotype and write a '
        'retraining config (a delta over the shipped config).')
    parser.add_argument('source', help='search work_dir, checkpoint (.pth) '
                        'or genotype JSON')
    parser.add_argument('--dataset', default='cityscapes',
                        choices=list(DATASETS), help='target dataset '
                        "('custom': mmseg's img_dir/ann_dir layout, with "
                        '--classes)')
    parser.add_argument('--filter-multiplier', '-F', type=int, default=20,
                        help='F of the retrained network (S/M/L: 20/32/48)')
    parser.add_argument('--out', required=True, help='config file to write')
    parser.add_argument('--genotype-out', help='genotype JSON to write '
                        '(default: next to --out, <config>_genotype.json)')
    parser.add_argument('--data-root', help='data root of every dataset '
                        '(as mmseg resolves it: relative to where training '
                        'runs, or absolute)')
    parser.add_argument('--work-dir', help='work_dir written into the '
                        'config')
    parser.add_argument('--classes', nargs='+', metavar='NAME',
                        help="class names, in label order ('custom' only)")
    parser.add_argument('--palette', nargs='+', type=_rgb, metavar='R,G,B',
                        help='one colour per class (custom; default: '
                        "mmseg's random palette)")
    parser.add_argument('--img-suffix', help="image suffix ('custom', "
                        "default '.jpg')")
    parser.add_argument('--seg-map-suffix', help="label suffix ('custom', "
                        "default '.png')")
    parser.add_argument('--end-level', type=int, default=None,
                        help='force the last level when decoding β')
    parser.add_argument('--max-iters', type=int, default=None,
                        help='override the schedule length')
    parser.add_argument('--smoke', action='store_true',
                        help=f'a tiny run: {SMOKE_SIZE}x{SMOKE_SIZE} crops, '
                        'small stem/head, 2 iterations with validation, no '
                        'workers (to check data and set-up in seconds)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, metavar='KEY=VALUE',
                        help='further overrides written into the config, '
                        'as for mmseg tools (e.g. '
                        'train_dataloader.batch_size=4)')
    return parser.parse_args(argv)


def _options(args):
    """The dotted-key overrides the arguments ask for."""
    from mmengine.config import Config
    if args.dataset == 'custom':
        if not args.classes:
            raise DecodeError('--dataset custom needs --classes (the class '
                              'names, in label order)')
    else:
        for flag in ('classes', 'palette', 'img_suffix', 'seg_map_suffix'):
            if getattr(args, flag) is not None:
                raise DecodeError(f'--{flag.replace("_", "-")} is for '
                                  f'--dataset custom only (got '
                                  f'--dataset {args.dataset})')
    if args.palette is not None and len(args.palette) != len(args.classes):
        raise DecodeError(f'--palette has {len(args.palette)} colours for '
                          f'{len(args.classes)} classes')
    if len(set(args.classes or ())) != len(args.classes or ()):
        raise DecodeError('--classes: class names must be distinct')
    base = Config.fromfile(base_config_path(args.dataset))
    opts = dataset_options(base, args.data_root, args.classes, args.palette,
                           args.img_suffix, args.seg_map_suffix)
    if args.classes:
        opts['model.decode_head.num_classes'] = len(args.classes)
    if args.work_dir:
        opts['work_dir'] = args.work_dir
    if args.smoke:
        opts.update(smoke_options(base))
    if args.max_iters is not None:
        opts['train_cfg.max_iters'] = args.max_iters
        for i, sched in enumerate(base.get('param_scheduler', [])):
            if sched.get('end') == base.train_cfg.max_iters:
                opts[f'param_scheduler.{i}.end'] = args.max_iters
    opts.update(args.cfg_options or {})
    return opts


def _check_loads(text, config_out):
    """Load ``text`` as the config at ``config_out`` would load."""
    import tempfile

    from mmengine.config import Config
    folder = osp.dirname(osp.abspath(config_out))
    created = not osp.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.check_', suffix='.py', dir=folder)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        Config.fromfile(tmp)
    except Exception as e:
        raise DecodeError(f'the written config would not load '
                          f'({type(e).__name__}: {e})') from None
    finally:
        os.remove(tmp)
        if created:
            try:
                os.removedirs(folder)  # only empty folders made here
            except OSError:
                pass


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
    genotype_out = args.genotype_out or default_genotype_out(args.out)
    if osp.realpath(genotype_out) == osp.realpath(args.out):
        raise DecodeError(f'--genotype-out and --out are the same file '
                          f'({args.out}); the genotype JSON and the config '
                          'need two files')
    genotype, source = load_source(args.source, args.end_level)
    text = render_config(genotype, genotype_out, args.out, args.dataset,
                         args.filter_multiplier, source, _options(args))
    # Checks before writing anything: the genotype round-trips, the config
    # compiles and loads with its relative _base_ (from a temporary file in
    # the target folder).
    Genotype.from_json(genotype.to_json(), source=genotype_out)
    compile(text, args.out, 'exec')
    _check_loads(text, args.out)
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
    from ..utils import error_line
    try:
        genotype, genotype_out, config_out = run(args)
    except (DecodeError, GenotypeError, OSError) as e:
        print(f'error: {error_line(e) or repr(e)}', file=sys.stderr)
        return 2
    print(genotype.describe())
    cost = recorded_cost(args.source if not osp.isdir(args.source) else
                         osp.join(args.source, 'genotype.json'))
    if cost is not None:
        print(cost_line(cost))
    print(f'genotype: {genotype_out}')
    print(f'config:   {config_out}')
    print(f'train:    mim train mmsegmentation {config_out}')
    return 0
