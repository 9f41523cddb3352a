"""GenotypeHook sends the α heatmap, β trellis and decoded cell of every
validation to mmengine's visualizer: a real search, a real Visualizer with
a LocalVisBackend, the saved files compared with tools/plot_search.py's."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from mmseg_autodeeplab.visualization.search_plots import (PLOT_FILES,
                                                          entry_images,
                                                          plot_all)

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.mark.slow
def test_search_images_reach_the_visualizer(tiny_cityscapes, tiny_cfg,
                                            tmp_path):
    from mmengine.runner import Runner
    work_dir = str(tmp_path / 'search')
    cfg = tiny_cfg(tiny_cityscapes, work_dir, **{
        # validations after epochs 1 and 2 (α/β not updated yet) and 3
        'train_cfg.max_epochs': 3, 'train_cfg.arch_start_epoch': 2,
        'visualizer.vis_backends': [dict(type='LocalVisBackend')],
        # mmengine reuses a visualizer of the same name made by another test
        'visualizer.name': 'genotype_images_test'})
    Runner.from_cfg(cfg).train()
    with open(osp.join(work_dir, 'search_history.json')) as f:
        history = json.load(f)
    assert [h['arch_active'] for h in history] == [False, False, True]
    image_dir, = glob.glob(osp.join(work_dir, '*', 'vis_data', 'vis_image'))
    for name in ('alpha', 'beta', 'cell'):
        saved = sorted(glob.glob(osp.join(image_dir, f'search_{name}_*.png')))
        steps = sorted(int(p.rsplit('_', 1)[1][:-4]) for p in saved)
        # stepped by the iteration each records; the second validation's
        # α/β equal the first's, so it draws nothing new
        assert steps == [history[0]['iter'], history[2]['iter']], saved
    # the last validation's images are plot_search.py's PNGs, pixel for pixel
    plots = plot_all(history, tmp_path / 'plots')
    expected = entry_images(history[-1])
    for name, key in (('alpha', 'alpha'), ('beta', 'beta'), ('cell', 'cell')):
        bgr = cv2.imread(osp.join(image_dir,
                                  f'search_{name}_{history[-1]["iter"]}.png'))
        assert np.array_equal(bgr[..., ::-1], expected[name])
        drawn = cv2.imread(plots[key])
        assert np.array_equal(drawn, bgr), PLOT_FILES[key]
        # a drawing, not a blank canvas
        assert bgr.shape[0] > 200 and bgr.std() > 10

