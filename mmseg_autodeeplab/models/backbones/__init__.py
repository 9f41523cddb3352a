from .autodeeplab_supernet import AutoDeepLabSupernet

__all__ = ['AutoDeepLabSupernet']
