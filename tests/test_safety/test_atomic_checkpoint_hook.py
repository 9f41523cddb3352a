"""AtomicCheckpointHook with save_best (nested saves) and max_keep_ckpts."""
import os

from mmseg_autodeeplab.engine.atomic_checkpoint_hook import \
    AtomicCheckpointHook


class _Runner:
    """The two things the hook touches: ``iter`` and ``save_checkpoint``."""

    def __init__(self):
        self.iter = 3
        self.saved = []

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        with open(os.path.join(out_dir, filename), 'wb') as f:
            f.write(b'ckpt ' + filename.encode())
        self.saved.append(filename)


def test_nested_atomic_saves_are_reentrant(tmp_path):
    hook = AtomicCheckpointHook(interval=1)
    hook.out_dir = str(tmp_path)
    runner = _Runner()
    with hook._atomic_saves(runner):
        with hook._atomic_saves(runner):  # best save -> step save
            runner.save_checkpoint(str(tmp_path), 'iter_3.pth')
        runner.save_checkpoint(str(tmp_path), 'best_mIoU_iter_3.pth')
    assert 'save_checkpoint' not in vars(runner)  # method restored
    assert runner.saved == ['.iter_3.pth.partial',
                            '.best_mIoU_iter_3.pth.partial']
    assert sorted(os.listdir(tmp_path)) == [
        'best_mIoU_iter_3.pth', 'best_mIoU_iter_3.pth.sha256', 'iter_3.pth',
        'iter_3.pth.sha256']
