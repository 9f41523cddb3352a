"""Compatibility fixes for the pinned OpenMMLab stack on current torch.

Three things are set here, all at import time of :mod:`mmseg_autodeeplab`:

* mmcv-lite has no compiled ``mmcv._ext`` but ``mmseg.models``/``mmseg.datasets``
  import ``mmcv.ops`` unconditionally. When (and only when) the real extension
  is missing, a stand-in module is registered whose attributes raise a clear
  error if a compiled op is actually called (the stand-in lives in the
  top-level ``mmseg_autodeeplab_mmcv_ext``, which the install also starts
  from a ``.pth`` file so that mmseg's own tools import without us).
* mmengine's loader for local checkpoint files is replaced by
  :func:`~mmseg_autodeeplab.utils.checkpoint.load_from_local_verified`:
  ``torch.load(weights_only=True)`` with NO extra allow-listed global, the
  sidecar digest verified and a one-line :class:`CheckpointError`. Nothing
  is added to torch's weights-only allow-list: importing this package never
  widens what ``torch.load`` accepts (our checkpoints are plain data, see
  :mod:`mmseg_autodeeplab.utils.checkpoint`).
* oneDNN (torch's CPU convolutions) caches 1024 compiled primitives by
  default; one search step of the paper's supernet creates about 2,400
  (forward, backward-data and backward-weights of ~290 conv shapes at
  129x129, more when validation uses other sizes), so every step recompiled
  about 1,300 of them. A larger cache is requested unless the user set one.
"""
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


def install_mmcv_ext_standin():
    """Register the ``mmcv._ext`` stand-in when the compiled one is missing.

    The install's startup hook (``mmseg_autodeeplab_mmcv_ext.pth``) already
    does this lazily for every process, so that mmseg's own tools work; this
    covers a checkout used without installing (``PYTHONPATH``).

    Returns:
        bool: True if the stand-in is (now) in use.
    """
    if has_compiled_mmcv():
        return False
    _mmcv_ext_hook.install()
    sys.modules.setdefault(_STANDIN_NAME, _mmcv_ext_hook.make_standin())
    return True


#: oneDNN primitive-cache entries requested (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``
#: wins when set). Read by oneDNN when it creates its first primitive, so
#: this only takes effect if no convolution ran before the import.
ONEDNN_CACHE_CAPACITY = 8192


def request_onednn_cache(capacity=ONEDNN_CACHE_CAPACITY):
    """Ask oneDNN for a primitive cache of ``capacity`` unless one is set."""
    os.environ.setdefault('ONEDNN_PRIMITIVE_CACHE_CAPACITY', str(capacity))


def apply_compat():
    """Apply every fix; safe to call more than once."""
    request_onednn_cache()
    install_mmcv_ext_standin()
    from .utils.checkpoint import install_checkpoint_loader
    install_checkpoint_loader()
