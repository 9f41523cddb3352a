"""tools/analysis/simultaneous_searches.py: whole tiny searches, alone and
two started together."""
import json
import sys

import pytest
from simultaneous_searches import main, run_together


@pytest.mark.slow
def test_simultaneous_mode_times_searches_alone_and_started_together(
        tmp_path, tiny_cityscapes):
    out = tmp_path / 'bench'
    rc = main(['--data-root', tiny_cityscapes,
               '--search-options', 'train_cfg.max_epochs=1',
               'train_cfg.arch_start_epoch=0', 'model.backbone.num_layers=3',
               'model.backbone.filter_multiplier=2',
               'train_cfg.val_at_start=False', '--out', str(out)])
    assert rc == 0
    data = json.loads((out / 'simultaneous.json').read_text())
    rows = {r['name']: r['runs'] for r in data['rows']}
    assert set(rows) == {'alone', 'two at once'}
    assert len(rows['alone']) == 1 and len(rows['two at once']) == 2
    for run in rows['alone'] + rows['two at once']:
        assert run['seconds'] > 0
    table = (out / 'simultaneous.md').read_text()
    assert '| two at once |' in table and 'train_cfg.max_epochs=1' in table


def test_bad_arguments_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(['--config', 'missing.py', '--out', str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config 'missing.py' not found"), err
    assert err.count('\n') == 1


def test_runs_started_together_get_their_own_time_and_thread_changes():
    """Each process's own exit time, and the 'CPU threads' lines the loop
    logs at a thread change, counted per process."""
    lines = 'print("CPU threads: 2 (...)"); print("CPU threads: 1 (...)")'
    runs = run_together([[sys.executable, '-c', lines],
                         [sys.executable, '-c', 'import time; '
                          'time.sleep(1.5)']], 'test')
    assert [r['thread_changes'] for r in runs] == [2, 0]
    assert runs[0]['seconds'] < 1.5 <= runs[1]['seconds']
