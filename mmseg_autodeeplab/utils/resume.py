"""Pick a checkpoint that resume can actually load."""
import glob
import os.path as osp

import torch


def _loadable(path):
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True,
                          mmap=True)
    except Exception as e:  # truncated zip, bad pickle, ...
        return False, f'{type(e).__name__}: {str(e).splitlines()[0][:120]}'
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        return False, 'no state_dict'
    return True, ''


def find_resumable_checkpoint(work_dir, logger=print):
    """The newest loadable checkpoint of ``work_dir`` (None if none).

    Starts from the file named in ``last_checkpoint``; if that one is missing
    or cannot be loaded, falls back to the newest loadable ``*.pth`` and says
    so through ``logger``.
    """
    candidates = []
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker, encoding='utf-8') as f:
            named = f.read().strip()
        if named:
            candidates.append(named)
    files = sorted(glob.glob(osp.join(work_dir, '*.pth')),
                   key=lambda p: osp.getmtime(p), reverse=True)
    candidates += [p for p in files if p not in candidates]
    first = candidates[0] if candidates else None
    for path in candidates:
        if not osp.isfile(path):
            logger(f'checkpoint {path} named in {marker} is missing')
            continue
        ok, why = _loadable(path)
        if ok:
            if path != first:
                logger(f'resuming from {path}, the last complete checkpoint '
                       f'(newer ones could not be loaded)')
            return path
        logger(f'checkpoint {path} cannot be loaded ({why}); trying an '
               'older one')
    return None


__all__ = ['find_resumable_checkpoint']
