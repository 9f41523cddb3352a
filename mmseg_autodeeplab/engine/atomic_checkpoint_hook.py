"""CheckpointHook whose files are atomic, plain data and digest-verified."""
import contextlib
import errno
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..utils.checkpoint import (DIGEST_SUFFIX, from_plain, record_digest,
                                to_plain)
from ..utils.errors import exit_with_error

#: Leftovers of a killed write: ``.iter_5.pth.partial`` (this hook) and
#: ``.genotype.json.XXXX.tmp`` (:func:`~mmseg_autodeeplab.utils.atomic_write_text`).
STALE_PATTERNS = ('.*.partial', '.*.tmp')


def remove_stale_files(folder):
    """Delete leftovers of killed writes in ``folder``; returns their names."""
    removed = []
    for pattern in STALE_PATTERNS:
        for path in glob.glob(osp.join(glob.escape(folder), pattern)):
            try:
                os.remove(path)
                removed.append(osp.basename(path))
            except OSError:
                pass
    # digest records whose checkpoint is gone (max_keep_ckpts, killed save)
    for side in glob.glob(osp.join(glob.escape(folder), '*' + DIGEST_SUFFIX)):
        if not osp.isfile(side[:-len(DIGEST_SUFFIX)]):
            try:
                os.remove(side)
            except OSError:
                pass
    return removed


def is_write_failure(exc):
    """Whether ``exc`` is a failed write (full disk, quota, I/O error).

    torch's zip writer reports these as RuntimeError('... file write
    failed'), without an errno.
    """
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)
    text = str(exc)
    return 'write failed' in text or 'failed writing' in text


def disk_full_exit(path, exc):
    """Stop with one line for a write that failed (disk full, I/O error)."""
    why = os.strerror(exc.errno) if getattr(exc, 'errno', None) else \
        ' '.join(str(exc).split())[:120]
    exit_with_error(f'{path}: cannot write ({why}); nothing partial was left '
                    'behind. Free space and continue with --resume')


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook (same arguments) with three guarantees.

    * Atomic: each file is written as ``.{name}.partial`` and renamed into
      place, so a process killed mid-write never leaves a truncated file under
      a real checkpoint name; leftovers are removed at the next start.
    * Safe to load: mmengine's message hub (HistoryBuffers, numpy values) is
      stored as plain data and rebuilt on load, so the file loads with
      ``torch.load(weights_only=True)`` and nothing allow-listed.
    * Verifiable: the sha256 of the file and the iteration inside it are
      recorded in ``{name}.sha256`` before the rename; resume and decode
      check it.
    A full disk stops the run with one line and removes the partial file.
    """

    def before_run(self, runner):
        super().before_run(runner)
        if is_main_process():
            for folder in {runner.work_dir, self.out_dir}:
                if folder and osp.isdir(folder):
                    removed = remove_stale_files(folder)
                    if removed:
                        runner.logger.info(
                            'removed leftovers of an interrupted write: '
                            + ', '.join(sorted(removed)))

    def before_save_checkpoint(self, runner, checkpoint):
        for key in list(checkpoint):
            if key != 'state_dict':  # tensors only; skip the long walk
                checkpoint[key] = to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint):
        if 'message_hub' in checkpoint:  # no-op if the loader rebuilt it
            checkpoint['message_hub'] = from_plain(checkpoint['message_hub'])

    @contextlib.contextmanager
    def _atomic_saves(self, runner):
        """Make ``runner.save_checkpoint`` atomic + digest-recorded within."""
        if 'save_checkpoint' in vars(runner):
            # nested: mmengine's best-checkpoint save ends with a step save
            yield
            return
        save = runner.save_checkpoint

        def atomic_save(out_dir, filename, *args, **kwargs):
            tmp = osp.join(out_dir, f'.{filename}.partial')
            final = osp.join(out_dir, filename)
            try:
                save(out_dir, osp.basename(tmp), *args, **kwargs)
                if is_main_process():
                    record_digest(tmp, final, runner.iter)
                    os.replace(tmp, final)
            except (OSError, RuntimeError) as e:
                if is_main_process() and osp.exists(tmp):
                    os.remove(tmp)
                if is_write_failure(e):
                    disk_full_exit(final, e)
                raise

        runner.save_checkpoint = atomic_save  # shadows the method
        try:
            yield
        finally:
            del runner.save_checkpoint
        if is_main_process():
            # mmengine deletes checkpoints beyond max_keep_ckpts (and the
            # previous best): drop their digest records too
            remove_stale_files(self.out_dir)

    def _save_checkpoint_with_step(self, runner, step, meta):
        with self._atomic_saves(runner):
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner, metrics):
        with self._atomic_saves(runner):
            super()._save_best_checkpoint(runner, metrics)


__all__ = ['AtomicCheckpointHook', 'disk_full_exit', 'is_write_failure',
           'remove_stale_files']
