"""The README's TensorBoard snippet: scalars (losses, mIoU, α/β entropy)
reach TensorBoard event files through mmengine's TensorboardVisBackend."""
import glob
import os.path as osp

import pytest

pytest.importorskip(
    'tensorboard', reason="needs the tensorboard extra: pip install "
    "'.[tensorboard]' (make install does)")

#: what README.md shows (a config delta)
SNIPPET = dict(vis_backends=[dict(type='LocalVisBackend'),
                             dict(type='TensorboardVisBackend')])


@pytest.mark.slow
def test_search_scalars_reach_tensorboard(tiny_cityscapes, tiny_cfg,
                                          tmp_path):
    from mmengine.runner import Runner
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    work_dir = str(tmp_path / 'search')
    cfg = tiny_cfg(tiny_cityscapes, work_dir, **{
        'visualizer.vis_backends': SNIPPET['vis_backends'],
        # mmengine reuses an existing visualizer of the same name (and its
        # backends): earlier tests in this process made 'visualizer'
        'visualizer.name': 'tensorboard_test'})
    Runner.from_cfg(cfg).train()
    events = glob.glob(osp.join(work_dir, '*', 'vis_data', 'events.out.*'))
    assert len(events) == 1, events
    acc = EventAccumulator(events[0])
    acc.Reload()
    tags = set(acc.Tags()['scalars'])
    assert {'loss', 'mIoU'} <= tags, tags
    assert any('entropy' in t for t in tags), tags
