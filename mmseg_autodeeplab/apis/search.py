"""``tools/search.py``: run an Auto-DeepLab search with mmengine's Runner.

Behaves like mmseg's ``tools/train.py`` (same flags, work_dir default,
``--resume`` picking up the last checkpoint), plus pre-flight checks that stop
on bad input with one line before any work is done.
"""
import argparse
import os
import os.path as osp
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Auto-DeepLab architecture search (mmseg plugin)')
    parser.add_argument('config', help='search config file path')
    parser.add_argument('--work-dir', help='the dir to save logs, '
                        'checkpoints and genotypes')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the latest checkpoint in the work_dir')
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


def load_search_cfg(config, cfg_options=None, work_dir=None, resume=False,
                    launcher='none'):
    """Load a search config, apply overrides and run the pre-flight checks.

    Raises:
        ConfigError: with a one-line message on bad input.
    """
    from mmengine.config import Config

    from ..utils import ConfigError, check_search_cfg, sync_search_channels
    if not osp.isfile(config):
        raise ConfigError(f'config file {config!r} not found')
    try:
        cfg = Config.fromfile(config)
    except Exception as e:  # syntax errors, missing bases, ...
        raise ConfigError(f'{config}: cannot load config '
                          f'({type(e).__name__}: {e})') from None
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if launcher != 'none':
        _cpu_backend(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    cfg.resume = resume
    if resume and cfg.get('load_from') is None and osp.isdir(cfg.work_dir):
        from ..utils import find_resumable_checkpoint
        found = find_resumable_checkpoint(
            cfg.work_dir, logger=lambda m: print(f'warning: {m}',
                                                 file=sys.stderr))
        if found is not None:
            cfg.load_from = found  # mmengine resumes from load_from
    sync_search_channels(cfg)
    check_search_cfg(cfg)
    return cfg


def _cpu_backend(cfg):
    """CPU multi-process runs: gloo instead of nccl, and init it ourselves.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` before
    creating the process group, which fails on a CPU-only torch; it skips its
    own initialisation when a process group already exists.
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

    from ..utils import ConfigError
    try:
        cfg = load_search_cfg(args.config, args.cfg_options, args.work_dir,
                              args.resume, args.launcher)
        runner = Runner.from_cfg(cfg)
    except (ConfigError, ValueError, FileNotFoundError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        print(f'error: {msg}', file=sys.stderr)
        return 2
    runner.train()
    print(f'Search finished. Genotype: '
          f'{osp.join(cfg.work_dir, "genotype.json")}')
    return 0
