"""Compatibility fixes for the pinned OpenMMLab stack on current torch.

Three things are set here, all at import time of :mod:`mmseg_autodeeplab`:

* mmcv-lite has no compiled ``mmcv._ext`` but ``mmseg.models``/``mmseg.datasets``
  import ``mmcv.ops`` unconditionally. When (and only when) the real extension
  is missing, a stand-in module is registered whose attributes raise a clear
  error if a compiled op is actually called.
* torch >= 2.6 loads checkpoints with ``weights_only=True`` while mmengine
  0.10.7 pickles a few of its own objects into checkpoints. Instead of turning
  the safe loader off, the exact classes mmengine stores are allow-listed.
* oneDNN (torch's CPU convolutions) caches 1024 compiled primitives by
  default; one search step of the paper's supernet creates about 2,400
  (forward, backward-data and backward-weights of ~290 conv shapes at
  129x129, more when validation uses other sizes), so every step recompiled
  about 1,300 of them. A larger cache is requested unless the user set one.
"""
import importlib.machinery
import importlib.util
import os
import sys
import types

_STANDIN_NAME = 'mmcv._ext'


def _compiled_op_missing(name):

    def _raise(*args, **kwargs):
        raise RuntimeError(
            f'mmcv compiled op "{name}" was called, but this environment has '
            'mmcv-lite (no compiled ops). Install full mmcv 2.1.0 '
            '(MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0).')

    return _raise


def _make_ext_standin():
    module = types.ModuleType(_STANDIN_NAME)
    module.__doc__ = 'Stand-in for mmcv._ext registered by mmseg_autodeeplab.'
    module.__file__ = __file__
    # A spec without a loader: pkgutil.find_loader (used by mmengine's
    # mmcv_full_available) then reports "no compiled mmcv" instead of raising.
    module.__spec__ = importlib.machinery.ModuleSpec(_STANDIN_NAME, None)

    def __getattr__(name):
        # Dunder lookups (e.g. __path__, __spec__ probes) must fail normally,
        # otherwise import machinery and inspect treat the stub as a package.
        if name.startswith('__') and name.endswith('__'):
            raise AttributeError(name)
        return _compiled_op_missing(name)

    module.__getattr__ = __getattr__
    return module


def has_compiled_mmcv():
    """Whether the real compiled ``mmcv._ext`` extension is importable."""
    module = sys.modules.get(_STANDIN_NAME)
    if module is not None:
        return getattr(module, '__file__', None) != __file__
    try:
        return importlib.util.find_spec(_STANDIN_NAME) is not None
    except (ImportError, ValueError):
        return False


def install_mmcv_ext_standin():
    """Register the ``mmcv._ext`` stand-in when the compiled one is missing.

    Returns:
        bool: True if the stand-in is (now) in use.
    """
    if has_compiled_mmcv():
        return False
    sys.modules.setdefault(_STANDIN_NAME, _make_ext_standin())
    return True


def _safe_checkpoint_globals():
    import numpy as np
    from mmengine.logging import HistoryBuffer

    entries = [HistoryBuffer, np.ndarray, np.dtype, getattr]
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    entries += [multiarray._reconstruct, multiarray.scalar]
    # numpy pickles a dtype through its class (Float64DType, Int64DType, ...).
    dtype_names = ('float16', 'float32', 'float64', 'int8', 'int16', 'int32',
                   'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool_')
    for name in dtype_names:
        entries.append(type(np.dtype(getattr(np, name))))
    return entries


def allow_mmengine_checkpoint_globals():
    """Allow-list mmengine's checkpoint objects for ``torch.load``.

    ``weights_only`` stays on: only these classes become loadable.
    """
    import torch
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 does not load weights-only by default
        return
    add(_safe_checkpoint_globals())


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
    allow_mmengine_checkpoint_globals()
