"""Where this project's files are: the CWD, the repo or the installed package.

One resolver for the relative paths configs hold (``_base_`` configs,
``configs/genotypes/*.json``), so a shipped config works from a checkout, from
any working directory and after ``pip install``.
"""
import os
import os.path as osp

_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))


def project_search_dirs():
    """Folders a relative project path is resolved against, in order: the
    CWD, the repository root (a checkout or an editable install) and
    ``mmseg_autodeeplab/.mim`` (configs shipped inside a wheel)."""
    return [os.getcwd(), osp.dirname(_PACKAGE), osp.join(_PACKAGE, '.mim')]


def find_project_file(path):
    """``(found, candidates)``: the first existing file among ``path`` (if
    absolute) or ``path`` under each :func:`project_search_dirs`, or None."""
    path = osp.expanduser(os.fspath(path))
    candidates = [path] if osp.isabs(path) else [
        osp.join(d, path) for d in project_search_dirs()]
    found = next((c for c in candidates if osp.isfile(c)), None)
    return found, candidates


def find_project_config(rel):
    """Absolute path of ``configs/<rel>``, or None if it is nowhere."""
    found, _ = find_project_file(osp.join('configs', rel))
    return found and osp.abspath(found)


def resolve_config(config):
    """Absolute path of a config given as a path (absolute, or relative to
    the CWD, the repository or the installed package), as
    ``configs/``-relative, or as ``mmseg::`` (shipped in mmseg).

    Raises:
        FileNotFoundError: one line naming the config.
    """
    if config.startswith('mmseg::'):
        # Config.fromfile resolves ``mmseg::`` only inside ``_base_``
        import mmseg
        path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs',
                        config[len('mmseg::'):])
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{config}: not in the installed mmseg {mmseg.__version__}')
        return path
    found = find_project_file(config)[0] or find_project_config(config)
    if found is None:
        raise FileNotFoundError(f'cannot find config {config} (neither in '
                                'the repo nor in the installed package)')
    return osp.abspath(found)
