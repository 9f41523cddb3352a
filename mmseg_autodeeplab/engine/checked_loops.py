"""mmengine's train/val/test loops with a data-root check up front.

Why loops and not a hook: the Runner builds a loop's dataloader (and with it
the dataset, which lists the image folders) in ``build_*_loop``, BEFORE the
first hook call (``before_run``). A missing or misplaced data root therefore
surfaces as a ``FileNotFoundError`` traceback from deep inside mmengine. The
loops below check the dataloader config first (with
:func:`~mmseg_autodeeplab.utils.checks.check_dataset_cfg`) and stop with one
``error: ...`` line on stderr and exit status 2. They work unchanged through
mmseg's own ``tools/train.py`` / ``tools/test.py``, i.e. through
``mim train`` / ``mim test``, because the loop type is part of the config.

Otherwise they are exactly :class:`~mmengine.runner.IterBasedTrainLoop`,
:class:`~mmengine.runner.ValLoop` and :class:`~mmengine.runner.TestLoop`.
"""
import os

from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop

from ..utils.checks import ConfigError, check_dataset_cfg
from ..utils.errors import exit_with_error


def check_dataloader_cfg(dataloader, where):
    """Check a dataloader config's dataset; exit with one line if broken.

    Args:
        dataloader (dict | DataLoader): the loop's ``dataloader`` argument.
            A built DataLoader (not a config) is left alone.
        where (str): config key for the message, e.g. ``'train_dataloader'``.
    """
    if not isinstance(dataloader, dict):
        return
    dataset = dataloader.get('dataset')
    if not isinstance(dataset, dict):
        return
    try:
        check_dataset_cfg(dataset, where)
    except ConfigError as e:
        exit_with_error(e)


def check_checkpoint_inputs(runner):
    """Stop with one line if the run's start checkpoint is unusable.

    The Runner builds the train loop before it loads ``load_from`` or the
    resume checkpoint, so a train loop can check them first:

    * ``load_from`` must load (weights-only) and match its digest record;
    * ``resume`` without ``load_from``: when the checkpoint named in
      ``last_checkpoint`` is damaged, the intact one with the highest
      iteration is used instead (and said so); none at all is an error.
    """
    from mmengine.runner.checkpoint import find_latest_checkpoint

    from ..utils.checkpoint import CheckpointError, safe_load_checkpoint
    from ..utils.resume import find_resumable_checkpoint
    load_from = getattr(runner, '_load_from', None)
    if load_from:
        try:
            safe_load_checkpoint(load_from, mmap=True)
        except CheckpointError as e:
            exit_with_error(f'load_from: {e}')
        return
    if not getattr(runner, '_resume', False):
        return
    latest = find_latest_checkpoint(runner.work_dir)
    if latest is None and not any(
            name.endswith('.pth') for name in os.listdir(runner.work_dir)):
        return  # nothing to resume: mmengine starts from scratch
    if latest is not None:
        try:
            safe_load_checkpoint(latest, mmap=True)
            return
        except CheckpointError:
            pass
    found = find_resumable_checkpoint(
        runner.work_dir, logger=lambda m: runner.logger.warning(m))
    if found is None:
        exit_with_error(f'{runner.work_dir}: resume found no intact '
                        'checkpoint (see the warnings above)')
    runner._load_from = found  # mmengine resumes from load_from


@LOOPS.register_module()
class CheckedIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that first checks its data and checkpoint."""

    def __init__(self, runner, dataloader, *args, **kwargs):
        check_dataloader_cfg(dataloader, 'train_dataloader')
        check_checkpoint_inputs(runner)
        super().__init__(runner, dataloader, *args, **kwargs)


@LOOPS.register_module()
class CheckedValLoop(ValLoop):
    """``ValLoop`` that first checks ``val_dataloader``'s data."""

    def __init__(self, runner, dataloader, *args, **kwargs):
        check_dataloader_cfg(dataloader, 'val_dataloader')
        super().__init__(runner, dataloader, *args, **kwargs)


@LOOPS.register_module()
class CheckedTestLoop(TestLoop):
    """``TestLoop`` that first checks ``test_dataloader``'s data."""

    def __init__(self, runner, dataloader, *args, **kwargs):
        check_dataloader_cfg(dataloader, 'test_dataloader')
        super().__init__(runner, dataloader, *args, **kwargs)


__all__ = ['CheckedIterBasedTrainLoop', 'CheckedValLoop', 'CheckedTestLoop',
           'check_checkpoint_inputs', 'check_dataloader_cfg']
