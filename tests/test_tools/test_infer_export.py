"""tools/infer.py, tools/export_onnx.py, tools/get_flops.py, and mmseg's own
APIs/tools on our configs from a process that never imports our package.

A decoded config (paper genotype, F=2, --smoke) with a checkpoint of random
weights stands in for a retrained network: what is checked is the plumbing
(same predictions as mmseg's inference_model, ONNX parity), not accuracy.
"""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import mmseg_autodeeplab  # noqa: F401
from mmseg_autodeeplab.cli import export_onnx, get_flops, infer
from mmseg_autodeeplab.cli.decode_genotype import main as decode

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER_JSON = osp.join(REPO, 'configs', 'genotypes', 'autodeeplab_paper.json')
CLASSES = ('bg', 'thing', 'stuff')

try:
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    HAVE_DEPLOY = True
except ImportError:
    HAVE_DEPLOY = False
needs_deploy = pytest.mark.skipif(
    not HAVE_DEPLOY, reason="needs the deploy extra (onnx, onnxruntime): "
    "pip install '.[deploy]' (make install does)")


def _write_config(folder, f):
    out = osp.join(folder, f'adl_f{f}.py')
    assert decode([PAPER_JSON, '--dataset', 'custom', '-F', str(f),
                   '--classes', *CLASSES, '--palette', '0,0,0', '255,0,0',
                   '0,255,0', '--smoke', '--out', out]) == 0
    return out


def _save_checkpoint(config, path, seed=0):
    """A checkpoint as mmengine's Runner writes one (state_dict + meta)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(Config.fromfile(config).model)
    # non-trivial BN statistics, so that eval-mode outputs are not tiny
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    meta = {'dataset_meta': {'classes': CLASSES,
                             'palette': [[0, 0, 0], [255, 0, 0],
                                         [0, 255, 0]]}}
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return path


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    import cv2
    root = tmp_path_factory.mktemp('infer')
    config = _write_config(str(root), 2)
    ckpt = _save_checkpoint(config, str(root / 'f2.pth'))
    images = root / 'images'
    (images / 'sub').mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(48, 80), (61, 97), (64, 64)]):
        folder = images / 'sub' if i == 2 else images
        path = str(folder / f'img{i}.{"png" if i else "jpg"}')
        cv2.imwrite(path, rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        paths.append(path)
    return dict(root=root, config=config, ckpt=ckpt, images=str(images),
                paths=paths)


# --------------------------------------------------------------------------
# tools/infer.py
def test_infer_writes_label_maps_and_overlays(model_files, tmp_path,
                                              capsys):
    import cv2
    from mmseg.apis import inference_model, init_model
    out = tmp_path / 'out'
    # a folder (recursed) and a file given twice: names stay distinct
    rc = infer.main([model_files['config'], model_files['ckpt'],
                     model_files['images'], model_files['paths'][0],
                     '--out', str(out), '--no-progress'])
    assert rc == 0, capsys.readouterr().err
    assert sorted(os.listdir(out / 'pred')) == [
        'img0.png', 'img0_1.png', 'img1.png', 'img2.png']
    model = init_model(model_files['config'], model_files['ckpt'], 'cpu')
    for path in model_files['paths']:
        name = osp.splitext(osp.basename(path))[0] + '.png'
        label = cv2.imread(str(out / 'pred' / name), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(path)
        assert label.shape == image.shape[:2] and label.dtype == np.uint8
        assert label.max() < len(CLASSES)
        # exactly mmseg's own inference_model
        expected = inference_model(model, path).pred_sem_seg.data[0].numpy()
        assert (label == expected).all()
        vis = cv2.imread(str(out / 'vis' / name))
        assert vis.shape == image.shape
        # the overlay is the image blended with the class colours
        assert not (vis == image).all()
    assert not [p for p in os.listdir(out / 'pred') if p.startswith('.')]


def test_infer_bad_input_is_one_line(model_files, tmp_path, capsys):
    f4 = _write_config(str(tmp_path), 4)
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    empty = tmp_path / 'empty'
    empty.mkdir()
    cases = [
        ([model_files['config'], model_files['ckpt'], str(tmp_path / 'no')],
         'no such image or folder'),
        ([model_files['config'], model_files['ckpt'], str(empty)],
         'no images'),
        ([str(tmp_path / 'missing.py'), model_files['ckpt'],
          model_files['images']], 'config file not found'),
        ([model_files['config'], str(tmp_path / 'missing.pth'),
          model_files['images']], 'missing.pth'),
        ([model_files['config'], str(garbage), model_files['images']],
         'garbage.pth'),
        ([f4, model_files['ckpt'], model_files['images']],
         'does not match the model of this config'),
    ]
    for argv, message in cases:
        rc = infer.main(argv + ['--out', str(tmp_path / 'o'),
                                '--no-progress'])
        err = capsys.readouterr().err
        assert rc == 2, argv
        assert err.startswith('error: ') and err.count('\n') == 1, err
        assert message in err, (message, err)
        assert not (tmp_path / 'o').exists()


# --------------------------------------------------------------------------
# tools/export_onnx.py
def _onnx_run(path, x):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {'input': x.numpy()})[0]


@pytest.mark.slow
@needs_deploy
def test_export_static_and_dynamic_match_pytorch(model_files, tmp_path,
                                                 capsys):
    model, _ = export_onnx.load_segmentor(model_files['config'],
                                          model_files['ckpt'])
    wrapper = export_onnx.SegmentorForExport(model).eval()
    static = str(tmp_path / 'static.onnx')
    assert export_onnx.main([model_files['config'], model_files['ckpt'],
                             '--out', static, '--shape', '64', '96']) == 0
    printed = capsys.readouterr().out
    assert 'at 64x96: max abs logit diff' in printed
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = wrapper(x).numpy()
    got = _onnx_run(static, x)
    assert got.shape == (1, len(CLASSES), 64, 96)
    assert np.abs(ref - got).max() <= 1e-4
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.9999
    assert np.abs(ref).max() > 1e-2  # not a trivially small output

    # dynamic: traced at an even size, exact at odd ones and another batch
    dynamic = str(tmp_path / 'dynamic.onnx')
    records = export_onnx.export(model, dynamic, (64, 64), dynamic=True,
                                 check_shape=(97, 129))
    assert [r['shape'] for r in records] == [(64, 64), (97, 129)]
    for r in records:
        assert r['max_abs_diff'] <= 1e-4 and r['argmax_agreement'] >= 0.9999
    for shape in [(2, 3, 65, 33), (1, 3, 129, 257)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = wrapper(x).numpy()
        got = _onnx_run(dynamic, x)
        assert got.shape == ref.shape
        assert np.abs(ref - got).max() <= 1e-4

    # argmax in the graph
    labels = str(tmp_path / 'labels.onnx')
    export_onnx.export(model, labels, (33, 47), output='labels')
    x = torch.randn(1, 3, 33, 47)
    with torch.no_grad():
        ref = wrapper(x).argmax(1).numpy()
    got = _onnx_run(labels, x)
    assert got.shape == (1, 33, 47) and (got == ref).mean() >= 0.9999


@needs_deploy
def test_export_bad_input_is_one_line_and_leaves_nothing(model_files,
                                                         tmp_path, capsys):
    f4 = _write_config(str(tmp_path), 4)
    out = tmp_path / 'm.onnx'
    cfg, ckpt = model_files['config'], model_files['ckpt']
    cases = [
        ([cfg, ckpt, '--shape', '0', '64'], '--shape must be positive'),
        ([cfg, ckpt, '--shape', '64'], 'expected 2 arguments'),
        ([str(tmp_path / 'x.py'), ckpt, '--shape', '64', '64'],
         'config file not found'),
        ([f4, ckpt, '--shape', '64', '64'], 'does not match the model'),
        ([cfg, str(tmp_path / 'x.pth'), '--shape', '64', '64'], 'x.pth'),
        # a parity limit nothing meets: verification fails, no file
        ([cfg, ckpt, '--shape', '32', '32', '--min-agreement', '1.5'],
         'onnxruntime disagrees with PyTorch at 32x32'),
    ]
    for argv, message in cases:
        try:
            rc = export_onnx.main(argv + ['--out', str(out)])
        except SystemExit as e:  # argparse usage errors
            rc = e.code
        err = capsys.readouterr().err
        assert rc == 2, argv
        assert err.startswith('error: ') and err.count('\n') == 1, err
        assert message in err, (message, err)
        assert not out.exists()
        assert not [p for p in os.listdir(tmp_path) if 'partial' in p]


# --------------------------------------------------------------------------
# mmseg's own tools and APIs, from a process that never imports us
_NATIVE = textwrap.dedent('''
    import sys
    import numpy as np
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    assert 'mmseg_autodeeplab' not in sys.modules
    config, ckpt, image = sys.argv[1:4]
    model = init_model(config, ckpt, device='cpu')
    pred = inference_model(model, image).pred_sem_seg.data[0].numpy()
    inferencer = MMSegInferencer(model=config, weights=ckpt, device='cpu')
    result = inferencer(image, show=False)
    assert (result['predictions'] == pred).all()
    print('native ok', type(model.backbone).__name__, pred.shape,
          model.dataset_meta['classes'])
''')


def test_mmseg_apis_work_without_importing_the_package(model_files,
                                                       tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run(
        [sys.executable, '-c', _NATIVE, model_files['config'],
         model_files['ckpt'], model_files['paths'][1]],
        cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "native ok AutoDeepLabNet (61, 97) ('bg', 'thing', 'stuff')" \
        in proc.stdout


def test_startup_hook_is_installed_and_lazy():
    import sysconfig
    site = sysconfig.get_paths()['purelib']
    if not osp.isfile(osp.join(site, 'mmseg_autodeeplab_mmcv_ext.pth')):
        pytest.skip('package not pip-installed in this interpreter '
                    '(make install does)')
    # a bare interpreter: the finder is on sys.meta_path, mmcv not imported
    proc = subprocess.run(
        [sys.executable, '-c', 'import sys; print(any(type(f).__name__ == '
         '"MmcvExtFinder" for f in sys.meta_path), "mmcv" in sys.modules)'],
        capture_output=True, text=True, cwd='/')
    assert proc.stdout.split() == ['True', 'False'], proc.stderr


def test_standin_fails_clearly_when_a_compiled_op_is_called():
    from mmseg_autodeeplab.compat import has_compiled_mmcv
    if has_compiled_mmcv():
        pytest.skip('compiled mmcv installed: no stand-in in use')
    import importlib
    ext = importlib.import_module('mmcv._ext')
    with pytest.raises(RuntimeError, match='mmcv-lite'):
        ext.nms(None)
    import pkgutil
    assert pkgutil.find_loader('mmcv._ext') is None  # mmengine: no mmcv-full


@pytest.mark.slow
def test_get_flops_counts_like_mmseg_intends(model_files, capsys):
    from mmengine.analysis import get_model_complexity_info
    flops, params = get_flops.count(model_files['config'], (64, 96))
    model, _ = export_onnx.load_segmentor(model_files['config'])
    x = torch.rand(1, 3, 64, 96)
    ref = get_model_complexity_info(model, inputs=(x, ), show_table=False,
                                    show_arch=False)
    assert (flops, params) == (ref['flops'], ref['params'])
    assert get_flops.main([model_files['config'], '--shape', '64',
                           '96']) == 0
    assert f'flops (multiply-adds): {flops}' in capsys.readouterr().out


@pytest.mark.slow
def test_mmseg_get_flops_imports_without_us(model_files, tmp_path):
    """mmseg's own get_flops.py (through mim) gets past its imports on
    mmcv-lite; it then stops on its own upstream bug, not on mmcv._ext."""
    proc = subprocess.run(
        [sys.executable, '-m', 'mim', 'run', 'mmsegmentation', 'get_flops',
         model_files['config'], '--shape', '64', '96'], cwd=str(tmp_path),
        capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    assert 'mmcv._ext' not in output
    if proc.returncode != 0:
        assert '"input_shape" and "inputs" cannot be both set' in output
