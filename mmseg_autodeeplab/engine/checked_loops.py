"""mmengine's train/val/test loops with their inputs checked up front.

Loops, not hooks: the Runner builds a loop's dataloader (which lists the
image folders) BEFORE the first hook call. These stop with one ``error:``
line and exit status 2, also under ``mim train/test`` (the loop type is part
of the config).
"""
import glob
import os.path as osp

from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from mmengine.runner.checkpoint import find_latest_checkpoint

from ..utils.checkpoint import CheckpointError, safe_load_checkpoint
from ..utils.checks import ConfigError, check_dataset_cfg
from ..utils.errors import exit_with_error
from ..utils.resume import find_resumable_checkpoint


def check_dataloader_cfg(dataloader, where):
    """Exit with one line if a dataloader config's data root is broken.

    A built DataLoader (not a config) is left alone; ``where`` is the config
    key for the message, e.g. ``'train_dataloader'``.
    """
    if isinstance(dataloader, dict):
        try:
            check_dataset_cfg(dataloader.get('dataset'), where)
        except ConfigError as e:
            exit_with_error(e)


def check_checkpoint_inputs(runner):
    """Stop with one line if the run's start checkpoint is unusable.

    The Runner builds the train loop before it loads ``load_from`` or the
    resume checkpoint, so a train loop can check them first: ``load_from``
    must load (weights-only) and match its digest record; ``resume`` without
    ``load_from`` starts from the intact checkpoint with the highest
    iteration (:func:`~mmseg_autodeeplab.utils.find_resumable_checkpoint`):
    the one place that choice is made, for ``tools/search.py --resume`` and
    ``mim train`` alike.
    """
    load_from = getattr(runner, '_load_from', None)
    where = 'load_from'
    if not load_from and getattr(runner, '_resume', False):
        found = find_resumable_checkpoint(runner.work_dir,
                                          logger=runner.logger.info)
        if found is not None:  # its digest checked by the choice
            runner._load_from = found  # mmengine resumes from load_from
            return
        if glob.glob(osp.join(glob.escape(runner.work_dir), '*.pth')):
            exit_with_error(f'{runner.work_dir}: resume found no intact '
                            'checkpoint (see the lines above); to start '
                            'again instead, delete them (tools/search.py: '
                            '--overwrite)')
        # checkpoints kept in another out_dir: mmengine resumes from the one
        # work_dir/last_checkpoint names (None: it starts from scratch)
        load_from, where = find_latest_checkpoint(runner.work_dir), 'resume'
    if load_from:
        try:
            safe_load_checkpoint(load_from, mmap=True)
        except CheckpointError as e:
            exit_with_error(f'{where}: {e}')


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
