from .autodeeplab_net import AutoDeepLabNet
from .autodeeplab_oneshot import AutoDeepLabOneShot
from .autodeeplab_supernet import AutoDeepLabSupernet

__all__ = ['AutoDeepLabNet', 'AutoDeepLabOneShot', 'AutoDeepLabSupernet']
