from .backbones import AutoDeepLabNet, AutoDeepLabSupernet
from .decode_heads import AutoDeepLabSumHead, AutoDeepLabV3PlusHead
from .necks import AutoDeepLabSearchASPP

__all__ = [
    'AutoDeepLabNet', 'AutoDeepLabSupernet', 'AutoDeepLabSearchASPP',
    'AutoDeepLabSumHead', 'AutoDeepLabV3PlusHead'
]
