from .sum_head import AutoDeepLabSumHead

__all__ = ['AutoDeepLabSumHead']
