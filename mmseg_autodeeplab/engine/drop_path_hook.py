"""Feeds the training progress to scheduled drop path."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .utils import unwrap_model


@HOOKS.register_module()
class DropPathScheduleHook(Hook):
    """Set ``drop_path_progress = iter / max_iters`` before every train iter.

    TF's scheduled drop path ramps the drop probability linearly with the
    training step (``min(1, step / total_training_steps)``). The runner's
    iteration is the only clock: it is right after a resume and needs no
    step count in the model config. Every module with a
    ``set_drop_path_progress`` method (e.g. ``AutoDeepLabNet``) is updated; a
    model without one is left alone, so the hook is harmless in any config.
    """
    priority = 'NORMAL'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        max_iters = runner.max_iters
        progress = runner.iter / max_iters if max_iters else 1.0
        for module in unwrap_model(runner.model).modules():
            setter = getattr(module, 'set_drop_path_progress', None)
            if callable(setter):
                setter(progress)
