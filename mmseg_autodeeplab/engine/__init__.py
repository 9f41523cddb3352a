from .atomic_checkpoint_hook import AtomicCheckpointHook
from .drop_path_hook import DropPathScheduleHook
from .genotype_hook import GenotypeHook
from .optim_constructor import AutoDeepLabOptimWrapperConstructor
from .search_loop import AutoDeepLabSearchLoop
from .search_state_hook import SearchLoopStateHook

__all__ = [
    'AtomicCheckpointHook', 'AutoDeepLabOptimWrapperConstructor',
    'AutoDeepLabSearchLoop', 'DropPathScheduleHook', 'GenotypeHook',
    'SearchLoopStateHook'
]
