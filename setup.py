"""Install mmseg-autodeeplab (configs and tools ship as package data)."""
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def add_mim_extension():
    """Copy configs/ and tools/ into mmseg_autodeeplab/.mim for wheels.

    ``mim`` and ``importlib.resources`` find configs there after a regular
    (non-editable) install; an editable install reads the repo directly.
    """
    mim_dir = osp.join(HERE, 'mmseg_autodeeplab', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in ('configs', 'tools'):
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if not osp.isdir(src):
            continue
        if osp.lexists(dst):
            shutil.rmtree(dst) if osp.isdir(dst) and not osp.islink(
                dst) else os.remove(dst)
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
        },
        license='Apache-2.0',
        zip_safe=False)
