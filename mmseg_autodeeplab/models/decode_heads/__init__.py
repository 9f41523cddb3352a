from .autodeeplab_head import AutoDeepLabV3PlusHead
from .autodeeplab_oneshot_head import AutoDeepLabOneShotHead
from .sum_head import AutoDeepLabSumHead

__all__ = ['AutoDeepLabOneShotHead', 'AutoDeepLabSumHead',
           'AutoDeepLabV3PlusHead']
