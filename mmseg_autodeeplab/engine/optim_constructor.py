"""Two optimizers for the search: weights (SGD) and architecture (Adam)."""
from mmengine.optim import OptimWrapperDict
from mmengine.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               OPTIMIZERS)

from .utils import split_arch_parameters


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
        if hasattr(model, 'module'):
            model = model.module
        weights, arch = split_arch_parameters(model)
        if not arch:
            raise ValueError(
                'optim_wrapper: the model has no architecture parameters '
                '(no submodule defines arch_parameters()); is the backbone '
                'AutoDeepLabSupernet?')
        wrappers = {}
        for name, params in (('weights', weights), ('arch', arch)):
            cfg = dict(self.cfgs[name])
            optimizer_cfg = dict(cfg.pop('optimizer'))
            optimizer_cfg['params'] = params
            optimizer = OPTIMIZERS.build(optimizer_cfg)
            cfg.setdefault('type', 'OptimWrapper')
            cfg['optimizer'] = optimizer
            wrappers[name] = OPTIM_WRAPPERS.build(cfg)
        return OptimWrapperDict(**wrappers)
