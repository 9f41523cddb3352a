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


def remove_stale_files(folder):
    """Delete leftovers of killed writes in ``folder``; returns their names.

    Leftovers are ``.iter_5.pth.partial`` (this hook) and
    ``.genotype.json.XXXX.tmp`` (:func:`~mmseg_autodeeplab.utils.atomic`);
    digest records whose checkpoint is gone (max_keep_ckpts, a killed save)
    are removed too, silently.
    """
    def paths(pattern):
        return glob.glob(osp.join(glob.escape(folder), pattern))

    removed = []
    for path in paths('.*.partial') + paths('.*.tmp'):
        with contextlib.suppress(OSError):
            os.remove(path)
            removed.append(osp.basename(path))
    for side in paths('*' + DIGEST_SUFFIX):
        if not osp.isfile(side[:-len(DIGEST_SUFFIX)]):
            with contextlib.suppress(OSError):
                os.remove(side)
    return removed


@contextlib.contextmanager
def exit_on_write_failure(path):
    """Stop with one line naming ``path`` when a write in the block fails
    (full disk, quota, I/O error); other errors propagate."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        text = ' '.join(str(e).split())
        if isinstance(e, OSError) and e.errno in (
                errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            why = os.strerror(e.errno)
        elif not isinstance(e, OSError) and (
                'write failed' in text or 'failed writing' in text):
            why = text[:120]  # torch's zip writer: no errno
        else:
            raise
        exit_with_error(f'{path}: cannot write ({why}); nothing partial was '
                        'left behind. Free space and continue with --resume')


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook (same arguments) with three guarantees.

    * Atomic: each file is written as ``.{name}.partial`` and renamed into
      place, so a killed write never leaves a truncated file under a real
      checkpoint name; leftovers are removed at the next start.
    * Safe to load: mmengine's message hub is stored as plain data
      (:func:`~mmseg_autodeeplab.utils.checkpoint.to_plain`), so the file
      loads with ``torch.load(weights_only=True)`` and nothing allow-listed.
    * Verifiable: the file's sha256 and iteration are recorded in
      ``{name}.sha256`` before the rename; resume and decode check it.

    A full disk stops the run with one line and removes the partial file.
    """

    def before_run(self, runner):
        super().before_run(runner)
        if is_main_process():
            # out_dir: None unless configured (mmengine sets it later)
            for folder in filter(None, {runner.work_dir, self.out_dir}):
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
        if 'message_hub' in checkpoint:
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
            with exit_on_write_failure(final):
                try:
                    save(out_dir, osp.basename(tmp), *args, **kwargs)
                    if is_main_process():
                        record_digest(tmp, final, runner.iter)
                        os.replace(tmp, final)
                except (OSError, RuntimeError):
                    if is_main_process() and osp.exists(tmp):
                        os.remove(tmp)
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


__all__ = ['AtomicCheckpointHook', 'exit_on_write_failure',
           'remove_stale_files']
