from .autodeeplab_head import AutoDeepLabV3PlusHead
from .sum_head import AutoDeepLabSumHead

__all__ = ['AutoDeepLabSumHead', 'AutoDeepLabV3PlusHead']
