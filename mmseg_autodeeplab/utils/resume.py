"""Pick the checkpoint a resume should start from."""
import glob
import os.path as osp

from .checkpoint import (DIGEST_SUFFIX, CheckpointError, safe_load_checkpoint,
                         verify_checkpoint)
from .checks import is_integer


def _iteration(path):
    """Iteration stored inside checkpoint ``path`` (cheap: mmap'd load)."""
    ckpt = safe_load_checkpoint(path, verify=False, mmap=True)
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    it = meta.get('iter') if isinstance(meta, dict) else None
    if not is_integer(it) or not isinstance(ckpt.get('state_dict'), dict):
        raise CheckpointError(f'{path}: not a training checkpoint (no '
                              'state_dict or meta.iter)')
    return it


def find_resumable_checkpoint(work_dir, logger=print):
    """The intact checkpoint of ``work_dir`` with the highest iteration.

    The choice never depends on file names or modification times: the
    iteration is read INSIDE each ``*.pth`` and the digest record checked.
    Files that are not checkpoints of this run (no ``meta.iter``, or no
    digest record in a work_dir whose checkpoints have them) are never
    chosen.

    Args:
        work_dir (str): the run's folder.
        logger (callable): receives one line per skipped file and one for
            the choice (file and iteration).

    Returns:
        str | None: path of the checkpoint, or None if there is none.
    """
    files = sorted(p for p in glob.glob(osp.join(glob.escape(work_dir),
                                                 '*.pth')) if osp.isfile(p))
    recorded = {p for p in files if osp.isfile(p + DIGEST_SUFFIX)}
    found = []
    for path in files:
        if recorded and path not in recorded:
            logger(f'ignoring {path}: not written by this run\'s checkpoint '
                   'hook (no digest record)')
            continue
        try:
            found.append((_iteration(path), path))
        except CheckpointError as e:
            logger(f'ignoring {e}')
    skipped = 0
    for it, path in sorted(found, reverse=True):
        try:
            verified = verify_checkpoint(path)
        except CheckpointError as e:
            logger(f'skipping {e}; trying the previous checkpoint')
            skipped += 1
            continue
        how = 'digest verified' if verified else 'no digest recorded'
        note = (f', after skipping {skipped} newer damaged one(s)'
                if skipped else '')
        logger(f'resuming from {path} (iteration {it}, {how}{note})')
        return path
    return None


__all__ = ['find_resumable_checkpoint']
