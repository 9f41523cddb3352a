"""Where this project's config files are: the repo or the installed package."""
import os.path as osp


def find_project_config(rel):
    """Absolute path of ``configs/<rel>``, or None if it is nowhere.

    Looked up in the repository checkout (``<repo>/configs``) first, then in
    the copy an install puts inside the package (``mmseg_autodeeplab/.mim``).
    """
    pkg = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(osp.dirname(pkg), 'configs'),
                 osp.join(pkg, '.mim', 'configs')):
        if osp.isfile(osp.join(root, rel)):
            return osp.join(root, rel)
    return None
