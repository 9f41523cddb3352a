"""Two optimizers for the search: weights (SGD) and architecture (Adam)."""
from mmengine.optim import OptimWrapperDict
from mmengine.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               OPTIMIZERS)

from .utils import unwrap_model


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AutoDeepLabOptimWrapperConstructor:
    """Build ``OptimWrapperDict(weights=..., arch=...)``.

    α/β (every parameter returned by a submodule's ``arch_parameters()``) go
    to the ``arch`` optimizer only and every other parameter to the
    ``weights`` optimizer only, so neither can touch the other's parameters.

    Config::

        optim_wrapper = dict(
            constructor='AutoDeepLabOptimWrapperConstructor',
            weights=dict(type='OptimWrapper', optimizer=dict(type='SGD', ...)),
            arch=dict(type='OptimWrapper', optimizer=dict(type='Adam', ...)))
    """

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        if paramwise_cfg:
            raise ValueError('AutoDeepLabOptimWrapperConstructor: '
                             'paramwise_cfg is not supported')
        missing = {'weights', 'arch'} - set(optim_wrapper_cfg)
        if missing:
            raise ValueError(
                'optim_wrapper: AutoDeepLabOptimWrapperConstructor needs '
                f'keys "weights" and "arch"; missing {sorted(missing)}')
        self.cfgs = {k: dict(optim_wrapper_cfg[k]) for k in ('weights',
                                                             'arch')}

    def __call__(self, model):
        model = unwrap_model(model)
        arch = [p for m in model.modules()
                if callable(getattr(m, 'arch_parameters', None))
                for p in m.arch_parameters()]
        if not arch:
            raise ValueError(
                'optim_wrapper: the model has no architecture parameters '
                '(no submodule defines arch_parameters()); is the backbone '
                'AutoDeepLabSupernet?')
        arch_ids = {id(p) for p in arch}
        weights = [p for p in model.parameters()
                   if id(p) not in arch_ids and p.requires_grad]
        wrappers = {}
        for name, params in (('weights', weights), ('arch', arch)):
            cfg = {'type': 'OptimWrapper', **self.cfgs[name]}
            cfg['optimizer'] = OPTIMIZERS.build(
                dict(cfg['optimizer'], params=params))
            wrappers[name] = OPTIM_WRAPPERS.build(cfg)
        return OptimWrapperDict(**wrappers)
