from .amp import SearchAmpOptimWrapper
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checked_loops import (CheckedIterBasedTrainLoop, CheckedTestLoop,
                            CheckedValLoop)
from .checkpoint_match_hook import CheckpointMatchHook
from .drop_path_hook import DropPathScheduleHook
from .genotype_hook import GenotypeHook
from .optim_constructor import AutoDeepLabOptimWrapperConstructor
from .oneshot_search_loop import OneShotSearchLoop
from .search_loop import AutoDeepLabSearchLoop
from .subnet_sampler_hook import SubnetSamplerHook

__all__ = [
    'AtomicCheckpointHook', 'AutoDeepLabOptimWrapperConstructor',
    'AutoDeepLabSearchLoop', 'CheckedIterBasedTrainLoop', 'CheckedTestLoop',
    'CheckedValLoop', 'CheckpointMatchHook', 'DropPathScheduleHook',
    'GenotypeHook', 'OneShotSearchLoop', 'SearchAmpOptimWrapper',
    'SubnetSamplerHook'
]
