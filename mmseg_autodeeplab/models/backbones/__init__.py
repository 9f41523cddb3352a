from .autodeeplab_net import AutoDeepLabNet
from .autodeeplab_supernet import AutoDeepLabSupernet

__all__ = ['AutoDeepLabNet', 'AutoDeepLabSupernet']
