"""A stand-in for ``mmcv._ext`` when only mmcv-lite is installed.

Why this is a top-level module started from a ``.pth`` file: mmseg 1.2.2
imports ``mmcv.ops`` (which needs the compiled ``mmcv._ext``) as soon as
``mmseg.apis``, ``mmseg.models`` or ``mmseg.datasets`` is imported, i.e.
before any config (and its ``custom_imports``) is read. So mmseg's own tools
and APIs (``init_model``, ``MMSegInferencer``, ``get_flops.py``, ...) fail
with ``No module named 'mmcv._ext'`` under mmcv-lite unless something runs
earlier than they do. The install puts ``mmseg_autodeeplab_mmcv_ext.pth``
into site-packages; its one line calls :func:`install` at interpreter start.

What :func:`install` does is cheap and lazy: it appends a finder to the END
of ``sys.meta_path``. Nothing is imported and nothing changes until some
code imports ``mmcv._ext``; a compiled mmcv, found by the normal finders
first, always wins (also when it is installed after this package). Only
when no real extension exists does the finder hand out a module whose
attributes raise a clear error if a compiled op is actually called.

This file imports nothing but the standard library: it runs in every
Python process of the environment.
"""
import importlib.abc
import importlib.machinery
import sys
import types

NAME = 'mmcv._ext'


def _compiled_op_missing(name):

    def _raise(*args, **kwargs):
        raise RuntimeError(
            f'mmcv compiled op "{name}" was called, but this environment has '
            'mmcv-lite (no compiled ops). Install full mmcv 2.1.0 '
            '(MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0).')

    return _raise


def _module_getattr(name):
    # Dunder lookups (e.g. __path__, __spec__ probes) must fail normally,
    # otherwise import machinery and inspect treat the stub as a package.
    if name.startswith('__') and name.endswith('__'):
        raise AttributeError(name)
    return _compiled_op_missing(name)


def make_standin():
    """A new ``mmcv._ext`` stand-in module (not registered anywhere)."""
    module = types.ModuleType(NAME)
    module.__doc__ = 'Stand-in for mmcv._ext (mmcv-lite has no compiled ops).'
    module.__file__ = __file__
    module.__getattr__ = _module_getattr
    _mark_not_compiled(module)
    return module


def _mark_not_compiled(module):
    # A spec without a loader: pkgutil.find_loader('mmcv._ext') (mmengine's
    # mmcv_full_available, mmcv's check_ops_exist) then reports "no compiled
    # mmcv" instead of handing out compiled-only code paths.
    module.__spec__ = importlib.machinery.ModuleSpec(NAME, None)


def is_standin(module):
    """Whether ``module`` is a stand-in made here."""
    return getattr(module, '__file__', None) == __file__


class StandinLoader(importlib.abc.Loader):
    """Creates the stand-in module for :class:`MmcvExtFinder`."""

    def create_module(self, spec):
        return make_standin()

    def exec_module(self, module):
        # the import system set __spec__ to ours (with this loader); restore
        # the loader-less one (see _mark_not_compiled)
        _mark_not_compiled(module)


class MmcvExtFinder(importlib.abc.MetaPathFinder):
    """Last-resort finder that serves ``mmcv._ext`` only.

    It sits at the end of ``sys.meta_path``, so Python consults it only
    after every regular finder failed to find a compiled extension.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != NAME:
            return None
        return importlib.machinery.ModuleSpec(NAME, StandinLoader())


def installed_finder():
    """The finder on ``sys.meta_path``, or None."""
    for finder in sys.meta_path:
        if type(finder).__name__ == 'MmcvExtFinder' and \
                type(finder).__module__ == __name__:
            return finder
    return None


def install():
    """Append the finder to ``sys.meta_path`` (once). Cheap, imports nothing.

    Returns:
        MmcvExtFinder: the finder in use.
    """
    finder = installed_finder()
    if finder is None:
        finder = MmcvExtFinder()
        sys.meta_path.append(finder)
    return finder
