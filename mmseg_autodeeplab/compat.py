"""Compatibility fixes for the pinned OpenMMLab stack on current torch,
applied when :mod:`mmseg_autodeeplab` is imported."""
import importlib.util
import os
import sys

import mmseg_autodeeplab_mmcv_ext as _mmcv_ext_hook

_STANDIN_NAME = _mmcv_ext_hook.NAME


def has_compiled_mmcv():
    """Whether the real compiled ``mmcv._ext`` extension is importable."""
    module = sys.modules.get(_STANDIN_NAME)
    if module is not None:
        return not _mmcv_ext_hook.is_standin(module)
    try:
        spec = importlib.util.find_spec(_STANDIN_NAME)
    except (ImportError, ValueError):
        return False
    # the startup hook's finder (last on sys.meta_path) answers for a
    # missing extension: its spec is not a compiled one
    return spec is not None and not isinstance(spec.loader,
                                               _mmcv_ext_hook.StandinLoader)


def apply_compat():
    """Apply every fix; safe to call more than once."""
    # oneDNN (torch's CPU convolutions) caches 1024 primitives by default;
    # one step of the paper's supernet creates about 2,400, so every step
    # recompiled about 1,300. Read when oneDNN creates its first primitive:
    # effective only if no convolution ran before the import.
    os.environ.setdefault('ONEDNN_PRIMITIVE_CACHE_CAPACITY', '8192')
    # mmcv-lite has no compiled mmcv._ext, which mmseg.models/datasets
    # import; the install's startup hook (mmseg_autodeeplab_mmcv_ext.pth)
    # registers a stand-in lazily, this covers a checkout on PYTHONPATH
    if not has_compiled_mmcv():
        _mmcv_ext_hook.install()
        sys.modules.setdefault(_STANDIN_NAME, _mmcv_ext_hook.make_standin())
    # local checkpoint loads (resume, load_from, --checkpoint): weights-only
    # with NO extra allow-listed global, digest verified, one-line errors
    from mmengine.runner.checkpoint import CheckpointLoader

    from .utils.checkpoint import load_from_local_verified
    CheckpointLoader.register_scheme(prefixes='',
                                     loader=load_from_local_verified,
                                     force=True)
