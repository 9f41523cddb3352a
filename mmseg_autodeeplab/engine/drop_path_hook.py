"""Feeds the training progress to scheduled drop path."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .utils import unwrap_model


@HOOKS.register_module()
class DropPathScheduleHook(Hook):
    """Set ``drop_path_progress = iter / max_iters`` before every train iter.

    TF's scheduled drop path ramps linearly with the training step; the
    runner's iteration is the clock (right after a resume, no step count in
    the model config). Modules without ``set_drop_path_progress`` are left
    alone, so the hook is harmless in any config.
    """
    priority = 'NORMAL'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        max_iters = runner.max_iters
        progress = runner.iter / max_iters if max_iters else 1.0
        for module in unwrap_model(runner.model).modules():
            setter = getattr(module, 'set_drop_path_progress', None)
            if callable(setter):
                setter(progress)
