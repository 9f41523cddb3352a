"""Install mmseg-autodeeplab (configs and tools ship as package data)."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = osp.dirname(osp.abspath(__file__))
#: One line run at interpreter start (see mmseg_autodeeplab_mmcv_ext.py):
#: makes mmseg's own tools and APIs import under mmcv-lite.
STARTUP_PTH = 'mmseg_autodeeplab_mmcv_ext.pth'


class BuildPyWithStartupPth(build_py):
    """build_py that also puts the startup ``.pth`` at the wheel's root.

    Files at a wheel's root land in site-packages, where Python reads
    ``.pth`` files; this covers regular and editable (PEP 660) installs.
    """

    def run(self):
        super().run()
        self.copy_file(osp.join(HERE, STARTUP_PTH),
                       osp.join(self.build_lib, STARTUP_PTH))

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [
            osp.join(self.build_lib, STARTUP_PTH)]


class _StrategyWithStartupPth:
    """Wraps setuptools' editable strategy: also writes the startup .pth."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc):
        return self.strategy.__exit__(*exc)

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        with open(osp.join(HERE, STARTUP_PTH), encoding='utf-8') as f:
            wheel.writestr(STARTUP_PTH, f.read())


class EditableWheelWithStartupPth(editable_wheel):
    """``pip install -e``: the editable wheel gets the startup .pth too.

    setuptools builds an editable wheel from its own strategy (a .pth plus
    a finder) and ignores extra build_py outputs; ``_select_strategy`` is
    where that strategy is chosen (setuptools 64-80, pinned by the
    Makefile).
    """

    def _select_strategy(self, *args, **kwargs):
        return _StrategyWithStartupPth(
            super()._select_strategy(*args, **kwargs))


def add_mim_extension():
    """Put configs/ and tools/ into mmseg_autodeeplab/.mim.

    ``mim`` and ``importlib.resources`` find configs there. A wheel needs
    copies; an editable install gets symlinks, so an edit to configs/ or
    tools/ is seen without reinstalling (copies went stale).
    """
    editable = {'develop', 'editable_wheel'} & set(sys.argv)
    mim_dir = osp.join(HERE, 'mmseg_autodeeplab', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in ('configs', 'tools'):
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if not osp.isdir(src):
            continue
        if osp.lexists(dst):
            shutil.rmtree(dst) if osp.isdir(dst) and not osp.islink(
                dst) else os.remove(dst)
        if editable:
            os.symlink(osp.join('..', '..', name), dst)
        else:
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))


def read_version():
    ns = {}
    with open(osp.join(HERE, 'mmseg_autodeeplab', 'version.py')) as f:
        exec(f.read(), ns)  # our own constant file, not user input
    return ns['__version__']


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmseg-autodeeplab',
        version=read_version(),
        description='Auto-DeepLab architecture search and retraining as an '
        'MMSegmentation 1.x plugin',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs',
                                        'tools')),
        py_modules=['mmseg_autodeeplab_mmcv_ext'],
        cmdclass={'build_py': BuildPyWithStartupPth,
                  'editable_wheel': EditableWheelWithStartupPth},
        include_package_data=True,
        package_data={'mmseg_autodeeplab': ['.mim/configs/**/*',
                                            '.mim/tools/**/*', '.mim/*']},
        python_requires='>=3.8',
        install_requires=[
            'torch>=2.0',
            'mmengine==0.10.7',
            'mmsegmentation==1.2.2',
            'ftfy',
            'regex',
            'numpy',
            'opencv-python-headless',
            'matplotlib',
        ],
        extras_require={
            'lite': ['mmcv-lite==2.1.0'],
            'full': ['mmcv==2.1.0'],
            'tests': ['pytest'],
            # ONNX export + onnxruntime parity/benchmark (tools/export_onnx.py)
            'deploy': ['onnx==1.23.1', 'onnxruntime==1.30.0'],
            # vis_backends=[dict(type='TensorboardVisBackend')]
            'tensorboard': ['tensorboard==2.21.0'],
        },
        license='Apache-2.0',
        zip_safe=False)
