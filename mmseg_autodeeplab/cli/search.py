"""``tools/search.py``: run an Auto-DeepLab search with mmengine's Runner.

Like mmseg's ``tools/train.py`` (same flags and work_dir default), plus
pre-flight checks that stop on bad input with one line before any work.
"""
import argparse
import contextlib
import glob
import os
import os.path as osp
import shutil
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Auto-DeepLab architecture search (mmseg plugin)')
    parser.add_argument('config', help='search config file path')
    parser.add_argument('--work-dir', help='the dir to save logs, '
                        'checkpoints and genotypes')
    parser.add_argument('--resume', action='store_true', help='resume from '
                        'the latest checkpoint in the work_dir')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='start a new search in a work_dir that already holds one, '
        'deleting its genotypes, history and checkpoints (without this '
        'flag such a work_dir is refused)')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision for both steps '
        '(as mmseg\'s tools/train.py --amp: optim_wrapper.weights becomes an '
        'AmpOptimWrapper; float16 with loss scaling on a GPU, bfloat16 on '
        'CPU)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, xxx=yyy format')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


#: What a search leaves in its work_dir (checked before a new run starts).
SEARCH_OUTPUTS = ('genotype.json', 'search_history.json', 'genotypes')


def existing_search(work_dir):
    """Names of a previous search's outputs found in ``work_dir``."""
    found = [n for n in SEARCH_OUTPUTS if osp.exists(osp.join(work_dir, n))]
    ckpts = glob.glob(osp.join(glob.escape(work_dir), '*.pth'))
    if ckpts:
        found.append(f'{len(ckpts)} checkpoint(s)')
    return found


def clear_search_outputs(work_dir):
    """Delete a previous search's outputs (``--overwrite``); logs stay."""
    if os.environ.get('RANK', '0') != '0':
        return  # rank 0 deletes; the others must not race it
    for name in SEARCH_OUTPUTS + ('last_checkpoint', ):
        path = osp.join(work_dir, name)
        if osp.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif osp.exists(path):
            os.remove(path)
    for pattern in ('*.pth', '*.pth.sha256'):
        for path in glob.glob(osp.join(glob.escape(work_dir), pattern)):
            os.remove(path)


def enable_amp(cfg):
    """``--amp``: what mmseg's ``tools/train.py --amp`` does to its one
    optimizer wrapper, done to the weights' (α/β follow it, see
    :mod:`~mmseg_autodeeplab.engine.amp`)."""
    from ..engine.amp import AMP_TYPES
    from ..utils import ConfigError
    weights = cfg.get('optim_wrapper', {}).get('weights')
    if weights is None:
        raise ConfigError('--amp: the config has no optim_wrapper.weights '
                          '(expected a search config)')
    kind = weights.get('type', 'OptimWrapper')
    if kind in AMP_TYPES:
        print('--amp: mixed precision is already enabled in the config',
              file=sys.stderr)
        return
    if kind not in ('OptimWrapper', 'mmengine.OptimWrapper'):
        raise ConfigError(f'--amp: optim_wrapper.weights.type={kind!r}; '
                          'expected OptimWrapper')
    weights.type = 'AmpOptimWrapper'
    weights.loss_scale = 'dynamic'


def load_search_cfg(config, cfg_options=None, work_dir=None, resume=False,
                    launcher='none', overwrite=False, owner=None,
                    amp=False):
    """Load a search config, apply overrides and run the pre-flight checks.

    A work_dir that already holds a search is refused unless ``resume`` or
    ``overwrite`` (:func:`main` deletes it after every other check passed).

    Args:
        owner (contextlib.ExitStack, optional): when given, the work_dir's
            lock (:mod:`~..utils.work_dir_lock`) is taken on it after the
            config checks and before the work_dir is looked at (the resume
            pick, the ``--overwrite`` deletion), and held until it closes.

    Raises:
        ConfigError: with a one-line message on bad input.
        WorkDirBusy: another live run owns the work_dir.
    """
    from mmengine.config import Config

    from ..utils import ConfigError, sync_search_channels
    if not osp.isfile(config):
        raise ConfigError(f'config file {config!r} not found')
    try:
        cfg = Config.fromfile(config)
    except Exception as e:  # syntax errors, missing bases, ...
        raise ConfigError(f'{config}: cannot load config '
                          f'({type(e).__name__}: {e})') from None
    cfg.merge_from_dict(cfg_options or {})
    if amp:
        enable_amp(cfg)
    cfg.launcher = launcher
    if launcher != 'none':
        _cpu_backend(cfg)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(config))[0])
    cfg.resume = resume
    sync_search_channels(cfg)
    check_search_cfg(cfg)
    from ..utils.checks import crop_warning
    warning = crop_warning(cfg)
    if warning:
        print(f'warning: {warning}', file=sys.stderr)
    if owner is not None:  # before anything in the work_dir is read
        from ..utils.work_dir_lock import hold_if_main, work_dir_lock
        owner.enter_context(hold_if_main(work_dir_lock(cfg.work_dir)))
    if not resume and not overwrite and osp.isdir(cfg.work_dir):
        found = existing_search(cfg.work_dir)
        if found:
            raise ConfigError(
                f'work_dir {cfg.work_dir!r} already holds a search '
                f'({", ".join(found)}); continue it with --resume, choose '
                'another --work-dir, or pass --overwrite to delete it and '
                'start again')
    # which checkpoint to resume from is the train loop's choice, made once
    # (check_checkpoint_inputs, as under mim train); refused here only when
    # the previous search left no checkpoint at all
    if resume and cfg.get('load_from') is None and osp.isdir(cfg.work_dir) \
            and existing_search(cfg.work_dir) and not glob.glob(
                osp.join(glob.escape(cfg.work_dir), '*.pth')):
        raise ConfigError(
            f'work_dir {cfg.work_dir!r}: --resume found no checkpoint to '
            'continue from; pass --overwrite instead of --resume to start '
            'again')
    return cfg


def check_search_cfg(cfg):
    """Run the supernet's, the loop's and the data checks on a config
    (the Runner creates the work_dir before the model and the loop check
    themselves); raises :class:`ConfigError`."""
    from ..engine.arch_cost_option import ArchCost
    from ..engine.amp import amp_cfgs, default_device
    from ..engine.search_loop import check_schedule
    from ..models.backbones.autodeeplab_supernet import check_supernet_args
    from ..utils import ConfigError, check_dataset_cfg
    backbone = cfg.get('model', {}).get('backbone', {})
    train_cfg = cfg.get('train_cfg') or {}
    try:
        if backbone.get('type') in ('AutoDeepLabSupernet',
                                    'mmseg.AutoDeepLabSupernet'):
            keys = ('num_layers', 'num_blocks', 'filter_multiplier',
                    'primitives', 'num_levels')
            check_supernet_args(**{k: backbone[k] for k in keys
                                   if k in backbone})
        if train_cfg.get('type') in ('AutoDeepLabSearchLoop',
                                     'mmseg.AutoDeepLabSearchLoop'):
            # 20: the loop's default (the paper's)
            check_schedule(train_cfg.get('max_epochs'),
                           train_cfg.get('arch_start_epoch', 20))
            ArchCost.check_cfg(train_cfg.get('arch_cost'))
        optim = cfg.get('optim_wrapper') or {}
        if 'weights' in optim and 'arch' in optim:
            amp_cfgs(optim['weights'], optim['arch'], default_device())
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for key in ('train_dataloader', 'val_dataloader'):
        check_dataset_cfg((cfg.get(key) or {}).get('dataset'), key)


def _cpu_backend(cfg):
    """CPU multi-process runs: gloo instead of nccl, initialised here
    (mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` first,
    which fails on a CPU-only torch, and skips an existing process group).
    """
    import datetime

    import torch
    import torch.distributed as torch_dist
    if torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    # CPU modules take device_ids=None (mmengine passes [LOCAL_RANK])
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if cfg.get('launcher') == 'pytorch' and not torch_dist.is_initialized():
        timeout = dist_cfg.get('timeout')
        kwargs = {} if timeout is None else dict(
            timeout=datetime.timedelta(seconds=timeout))
        torch_dist.init_process_group(backend=dist_cfg['backend'], **kwargs)


def main(argv=None):
    args = parse_args(argv)
    import mmseg_autodeeplab  # noqa: F401  (registers modules, compat)
    from mmengine.runner import Runner

    from ..utils import error_line
    from ..utils.errors import raised_by_package
    if args.resume and args.overwrite:
        print('error: --resume and --overwrite contradict each other: '
              'choose one', file=sys.stderr)
        return 2
    # the work_dir's lock lives as long as this stack: the whole run
    with contextlib.ExitStack() as owner:
        try:
            cfg = load_search_cfg(args.config, args.cfg_options,
                                  args.work_dir, args.resume, args.launcher,
                                  args.overwrite, owner=owner,
                                  amp=args.amp)
            if args.overwrite and osp.isdir(cfg.work_dir):
                clear_search_outputs(cfg.work_dir)
            runner = Runner.from_cfg(cfg)
        except (ValueError, FileNotFoundError, KeyError) as e:  # ConfigError
            msg = str(e).strip().splitlines()[0] if str(e).strip() \
                else repr(e)
            print(f'error: {msg}', file=sys.stderr)
            return 2
        try:
            runner.train()
        except (ValueError, FileNotFoundError) as e:
            # a check of ours inside the loop, its hooks or the checkpoint
            # loader (a refused resume / load_from file): one line, as above
            if not raised_by_package(e):
                raise
            print(f'error: {error_line(e)}', file=sys.stderr)
            return 2
    print(f'Search finished. Genotype: '
          f'{osp.join(cfg.work_dir, "genotype.json")}')
    return 0
