from .genotype_hook import GenotypeHook
from .optim_constructor import AutoDeepLabOptimWrapperConstructor
from .search_loop import AutoDeepLabSearchLoop
from .search_state_hook import SearchLoopStateHook

__all__ = ['AutoDeepLabSearchLoop', 'AutoDeepLabOptimWrapperConstructor',
           'GenotypeHook', 'SearchLoopStateHook']
