"""CheckpointHook whose checkpoint files appear atomically."""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook, but each file is written under a temporary
    name and renamed into place, so a process killed mid-write never leaves
    a truncated ``*.pth`` under a real checkpoint name. Same arguments.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        save = runner.save_checkpoint

        def atomic_save(out_dir, filename, *args, **kwargs):
            tmp = f'.{filename}.partial'
            save(out_dir, tmp, *args, **kwargs)
            if is_main_process():
                os.replace(osp.join(out_dir, tmp), osp.join(out_dir,
                                                            filename))

        runner.save_checkpoint = atomic_save  # shadows the method
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            del runner.save_checkpoint
