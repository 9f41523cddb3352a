"""tools/analysis/time_search_images.py: a one-epoch tiny search, every
validation's drawing timed apart from the validation."""
import json

import pytest
from time_search_images import main


@pytest.mark.slow
def test_drawing_and_validation_times_of_a_tiny_search(
        tiny_cityscapes, tmp_path, capsys):
    assert main(['--data-root', tiny_cityscapes, '--work-dir',
                 str(tmp_path / 'work'), '--epochs', '1', '--arch-start',
                 '0']) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.rindex('{\n "draw_s"'):])
    assert len(result['train_epoch_s']) == 1
    # validations before training and after the epoch, each drawn once
    assert len(result['draw_s']) == len(
        result['validation_without_drawing_s']) >= 1
    assert all(t > 0 for t in result['draw_s'] + result['train_epoch_s'])
