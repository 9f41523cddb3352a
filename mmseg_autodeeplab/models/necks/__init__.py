from .search_aspp import AutoDeepLabSearchASPP

__all__ = ['AutoDeepLabSearchASPP']
