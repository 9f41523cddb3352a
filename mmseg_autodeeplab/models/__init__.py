from .backbones import AutoDeepLabSupernet
from .decode_heads import AutoDeepLabSumHead
from .necks import AutoDeepLabSearchASPP

__all__ = ['AutoDeepLabSupernet', 'AutoDeepLabSearchASPP',
           'AutoDeepLabSumHead']
