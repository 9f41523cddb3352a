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


def run_files(source, checkpoint=None):
    """``(config, checkpoint)`` of a finished run, for the tools that read
    one: the one ``*.py`` config it dumped beside its checkpoints, and
    ``checkpoint`` (default: ``source`` if it is a file, else the intact one
    with the highest iteration). Anything missing: one ``error:`` line."""
    from .errors import exit_with_error
    folder = source if osp.isdir(source) else osp.dirname(source)
    checkpoint = checkpoint or (None if osp.isdir(source) else source)
    if checkpoint and not osp.isfile(checkpoint):
        exit_with_error(f'--checkpoint {checkpoint}: no such checkpoint file')
    configs = sorted(glob.glob(osp.join(glob.escape(folder), '*.py')))
    if len(configs) != 1:
        exit_with_error(f'{folder}: expected the one config a run dumps '
                        f'there, found {len(configs)} *.py files')
    found = checkpoint or find_resumable_checkpoint(folder,
                                                    logger=lambda line: None)
    if found is None:
        exit_with_error(f'{folder}: no intact checkpoint; pass --checkpoint')
    return configs[0], found
