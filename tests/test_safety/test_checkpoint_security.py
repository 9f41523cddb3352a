"""Loading a checkpoint never runs code (issue 9, part 1).

Each hostile file tries to create a marker file when unpickled. The tests
first prove the payload is live (it DOES run when its globals are
allow-listed, as the previous version allow-listed ``builtins.getattr``),
then that every entry point refuses it with one line and nothing runs.
"""
import io
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest
import torch

from mmseg_autodeeplab.utils.checkpoint import (CheckpointError,
                                                safe_load_checkpoint)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _glob(module, name):
    return f'c{module}\n{name}\n'.encode()


def _str(text):
    data = text.encode()
    return b'X' + len(data).to_bytes(4, 'little') + data


def _code(marker):
    return f"open({marker!r}, 'w').write('pwned')"


def _getattr(obj_ops, name):
    """Opcodes for getattr(<obj_ops>, name)."""
    return _glob('builtins', 'getattr') + b'(' + obj_ops + _str(name) + b'tR'


def _reach_eval():
    """getattr(getattr(getattr, '__self__'), 'eval'): builtins.eval."""
    builtins_module = _getattr(_glob('builtins', 'getattr'), '__self__')
    return _getattr(builtins_module, 'eval')


def getattr_chain(marker):
    """The exploit of the issue, from exactly the previous allow-list.

    Reach eval through getattr, plant it as ``len`` in the globals of the
    allow-listed HistoryBuffer's ``__init__``, then build a HistoryBuffer:
    its ``len(log_history)`` becomes ``eval(<code>)``.
    """
    hb = _glob('mmengine.logging.history_buffer', 'HistoryBuffer')
    init_globals = _getattr(_getattr(hb, '__init__'), '__globals__')
    code = _str(_code(marker))
    # [globals after SETITEM, HistoryBuffer(code, code)]: EMPTY_LIST,
    # MARK ... APPENDS (the weights-only unpickler has no POP)
    return (b'\x80\x02]('  + init_globals + _str('len') + _reach_eval()
            + b's' + hb + b'(' + code + code + b'tR' + b'e.')


def eval_via_getattr(marker):
    """getattr reaches eval, which is then called directly."""
    return (b'\x80\x02' + _reach_eval() + b'(' + _str(_code(marker))
            + b'tR.')


def direct_global(marker, module, name):
    """module.name(<code>), e.g. builtins.eval or os.system."""
    arg = f'touch {marker}' if name == 'system' else _code(marker)
    return b'\x80\x02' + _glob(module, name) + b'(' + _str(arg) + b'tR.'


def as_zip(pickle_bytes):
    """The same payload in torch's zip checkpoint layout."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', pickle_bytes)
        z.writestr('archive/byteorder', 'little')
        z.writestr('archive/version', '3\n')
    return buf.getvalue()


def _payloads(marker):
    return {
        'getattr_chain': getattr_chain(marker),
        'getattr_chain_zip': as_zip(getattr_chain(marker)),
        'eval_via_getattr': eval_via_getattr(marker),
        'eval': direct_global(marker, 'builtins', 'eval'),
        'exec': direct_global(marker, 'builtins', 'exec'),
        'os_system': direct_global(marker, 'os', 'system'),
        'import': direct_global(marker, 'builtins', '__import__'),
        'partial': direct_global(marker, 'functools', 'partial'),
        'attrgetter': direct_global(marker, 'operator', 'attrgetter'),
    }


@pytest.fixture
def hostile(tmp_path):
    marker = str(tmp_path / 'PWNED')
    files = {}
    for name, data in _payloads(marker).items():
        path = tmp_path / f'{name}.pth'
        path.write_bytes(data)
        files[name] = str(path)
    return marker, files


def test_payload_is_live_under_the_old_allow_list(tmp_path):
    # what the previous version allow-listed: the chain really runs code
    from mmengine.logging import HistoryBuffer, history_buffer
    marker = str(tmp_path / 'PWNED')
    path = tmp_path / 'x.pth'
    path.write_bytes(as_zip(getattr_chain(marker)))
    try:
        with torch.serialization.safe_globals([getattr, HistoryBuffer]):
            try:
                torch.load(str(path), weights_only=True)
            except Exception:
                pass
    finally:
        vars(history_buffer).pop('len', None)  # undo the planted global
    assert osp.exists(marker)


def test_safe_loader_refuses_every_payload(hostile):
    marker, files = hostile
    for name, path in files.items():
        with pytest.raises(CheckpointError) as exc:
            safe_load_checkpoint(path)
        msg = str(exc.value)
        assert '\n' not in msg and path in msg, (name, msg)
        assert not osp.exists(marker), name


def test_import_adds_nothing_to_torch_allow_list():
    # in a fresh process: torch's own list before and after our import
    code = ('import torch, torch.distributed, mmengine.runner, mmseg.models;'
            'before = set(map(str, torch.serialization.get_safe_globals()));'
            'import mmseg_autodeeplab;'
            'after = set(map(str, torch.serialization.get_safe_globals()));'
            'print(sorted(after - before))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.stdout.strip().splitlines()[-1] == '[]'


def test_plain_torch_load_after_import_refuses(hostile):
    import mmseg_autodeeplab  # noqa: F401
    marker, files = hostile
    for name, path in files.items():
        with pytest.raises(Exception):
            torch.load(path, weights_only=True)
        assert not osp.exists(marker), name


def test_mmengine_loader_refuses(hostile):
    # resume / load_from / --checkpoint all go through this loader
    import mmseg_autodeeplab  # noqa: F401
    from mmengine.runner.checkpoint import _load_checkpoint
    marker, files = hostile
    for name, path in files.items():
        with pytest.raises(CheckpointError):
            _load_checkpoint(path, map_location='cpu')
        assert not osp.exists(marker), name


def test_resume_finder_ignores_hostile_files(hostile, tmp_path):
    from mmseg_autodeeplab.utils import find_resumable_checkpoint
    marker, files = hostile
    lines = []
    assert find_resumable_checkpoint(str(tmp_path), logger=lines.append) \
        is None
    assert len([m for m in lines if m.startswith('ignoring')]) == len(files)
    assert not osp.exists(marker)


def _run_tool(args, cwd):
    return subprocess.run([sys.executable] + args, cwd=cwd,
                          capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))


def test_decode_tool_refuses(hostile):
    marker, files = hostile
    out = _run_tool([osp.join(REPO, 'tools', 'decode_genotype.py'),
                     files['getattr_chain_zip'], '--dataset', 'cityscapes',
                     '--out', str(osp.join(osp.dirname(marker), 'c.py'))],
                    REPO)
    assert out.returncode != 0
    assert 'Traceback' not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith('error: ')
    assert not osp.exists(marker)


def test_load_from_in_a_runner_refuses(hostile, tiny_cityscapes, tiny_cfg,
                                       tmp_path):
    from mmengine.runner import Runner
    marker, files = hostile
    cfg = tiny_cfg(tiny_cityscapes, str(tmp_path / 'w'),
                   load_from=files['getattr_chain_zip'])
    runner = Runner.from_cfg(cfg)
    with pytest.raises(CheckpointError):
        runner.load_or_resume()
    assert not osp.exists(marker)
