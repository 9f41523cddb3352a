"""Saves and restores the search loop's own state in checkpoints."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

_KEY = 'autodeeplab_search_loop'


@HOOKS.register_module()
class SearchLoopStateHook(Hook):
    """Put the trainB position and the RNG states into every checkpoint.

    mmengine's resume restores only the loop's epoch/iteration; without this
    hook a resumed search would replay trainB from its start and draw
    different augmentations, so it would not end where an uninterrupted run
    does. Registered automatically by :class:`AutoDeepLabSearchLoop`.
    """
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        loop = runner.train_loop
        if hasattr(loop, 'state_dict'):
            checkpoint[_KEY] = loop.state_dict()

    def after_load_checkpoint(self, runner, checkpoint):
        loop = runner.train_loop
        if _KEY in checkpoint and hasattr(loop, 'load_state_dict'):
            loop.load_state_dict(checkpoint[_KEY])
