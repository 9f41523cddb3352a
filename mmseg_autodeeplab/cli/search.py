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
SEARCH_OUTPUTS = ('genotype.json', 'search_history.json', 'genotypes',
                  'evolution_state.json', 'pareto.json', 'pareto')


def existing_search(work_dir):
    """Names of a previous search's outputs found in ``work_dir``."""
    found = [n for n in SEARCH_OUTPUTS if osp.exists(osp.join(work_dir, n))]
    ckpts = glob.glob(osp.join(glob.escape(work_dir), '*.pth'))
    if ckpts:
        found.append(f'{len(ckpts)} checkpoint(s)')
    return found


def clear_search_outputs(work_dir):
    """Delete a previous search's outputs (``--overwrite``); logs stay.

    Called by the run's main process alone, while it holds the work_dir's
    lock (:func:`own_work_dir`). A file that is already gone (removed by
    someone else meanwhile) is skipped.
    """
    for name in SEARCH_OUTPUTS + ('last_checkpoint', ):
        path = osp.join(work_dir, name)
        if osp.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    for pattern in ('*.pth', '*.pth.sha256'):
        for path in glob.glob(osp.join(glob.escape(work_dir), pattern)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def check_work_dir(cfg, resume=False, overwrite=False):
    """Refuse a work_dir that holds a search unless ``resume`` or
    ``overwrite``, and a ``resume`` that has no checkpoint to continue
    from (:class:`ConfigError`)."""
    from ..utils import ConfigError
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


def own_work_dir(cfg, owner, resume=False, overwrite=False):
    """Take ``cfg.work_dir`` for this run: its lock (held until ``owner``
    closes), the checks of what it holds and the ``--overwrite`` deletion.

    The main process does all three; the other ranks wait for its verdict
    (:func:`~..utils.launcher.main_decides`), so no rank of a refused run
    deletes or reads anything there, every rank stops with the same line,
    and no rank starts before the deletion has finished.

    Raises:
        ConfigError: the work_dir is owned by another live run, refused
            for its content, or cannot be used (a file, no permission): one
            line, on every rank.
    """
    from ..utils.launcher import main_decides
    from ..utils.work_dir_lock import work_dir_lock

    def take():
        owner.enter_context(work_dir_lock(cfg.work_dir).acquire())
        check_work_dir(cfg, resume, overwrite)
        if overwrite and osp.isdir(cfg.work_dir):
            clear_search_outputs(cfg.work_dir)

    main_decides(take, f'work_dir {cfg.work_dir!r}')


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
    ``overwrite``. Under a launcher the process group is started after the
    config checks (a missing launcher variable is refused first).

    Args:
        owner (contextlib.ExitStack, optional): when given, the work_dir is
            taken for the run after the config checks
            (:func:`own_work_dir`: the lock, held until ``owner`` closes,
            then the checks of what it holds and the ``--overwrite``
            deletion, by rank 0 only).

    Raises:
        ConfigError: with a one-line message on bad input (another live
            run owning the work_dir included).
    """
    from mmengine.config import Config

    from ..utils import ConfigError, sync_search_channels
    from ..utils.launcher import launcher_env
    launcher_env(launcher)  # a missing variable: one line, before any work
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
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(config))[0])
    cfg.resume = resume
    sync_search_channels(cfg)
    check_search_cfg(cfg)
    from ..utils.checks import crop_warning
    warning = crop_warning(cfg)
    if warning:
        print(f'warning: {warning}', file=sys.stderr)
    if launcher != 'none':  # every rank joins before rank 0 decides
        _cpu_backend(cfg)
        start_process_group(cfg)
    if owner is not None:  # before anything in the work_dir is read
        own_work_dir(cfg, owner, resume, overwrite)
    else:
        check_work_dir(cfg, resume, overwrite)
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
    """CPU multi-process runs: gloo instead of nccl, and CPU modules in
    the DDP wrapper."""
    import torch
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


def start_process_group(cfg):
    """Join the run's process group now, as the Runner would later (it
    skips an initialised group): every rank must be in it before rank 0
    decides on the work_dir (:func:`own_work_dir`).

    With CUDA this is mmengine's ``init_dist``. On a CPU-only torch that
    fails (it calls ``torch.cuda.set_device`` first), so the launcher's
    variables are turned into torch's ``env://`` ones here, as
    ``init_dist`` would set them.

    Raises:
        LauncherError: the launcher's variables are incomplete, or this
            rank could not join the others within ``dist_cfg.timeout``
            (with CUDA too).
    """
    import datetime

    import torch
    import torch.distributed as torch_dist

    from ..utils.launcher import LauncherError, launcher_env
    if cfg.launcher == 'none' or torch_dist.is_initialized():
        return
    layout = launcher_env(cfg.launcher)
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    try:
        if torch.cuda.is_available():
            from mmengine.dist import init_dist
            init_dist(cfg.launcher, **dist_cfg)
        else:
            os.environ.update(
                RANK=str(layout['rank']),
                WORLD_SIZE=str(layout['world_size']),
                LOCAL_RANK=str(layout['local_rank']),
                MASTER_ADDR=layout['master_addr'],
                MASTER_PORT=str(layout['master_port']))
            timeout = dist_cfg.get('timeout')
            torch_dist.init_process_group(
                backend=dist_cfg.get('backend', 'gloo'),
                **({} if timeout is None else dict(
                    timeout=datetime.timedelta(seconds=timeout))))
    except (RuntimeError, TimeoutError) as e:  # DistStoreError, refused
        detail = (str(e).strip().splitlines() or [''])[0]
        raise LauncherError(
            f'--launcher {cfg.launcher}: rank {layout["rank"]} of '
            f'{layout["world_size"]} could not join the run at '
            f'{layout["master_addr"]}:{layout["master_port"]} '
            f'({type(e).__name__}: {detail})') from None


def main(argv=None):
    try:
        return _main(argv)
    finally:
        # a process group left to interpreter shutdown can abort the
        # process ("terminate called without an active exception") after
        # its one-line refusal: end it here, on every exit path
        import torch.distributed as torch_dist
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def _main(argv=None):
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
