"""Two optimizers for the search: weights (SGD) and architecture (Adam)."""
from mmengine.optim import OptimWrapperDict
from mmengine.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               OPTIMIZERS)

from .amp import amp_cfgs
from .utils import find_supernet, unwrap_model


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AutoDeepLabOptimWrapperConstructor:
    """Build ``OptimWrapperDict(weights=..., arch=...)``.

    α/β (the supernet's ``arch_parameters()``) go to the ``arch`` optimizer
    only and every other parameter to the ``weights`` optimizer only, so
    neither can touch the other's parameters. ``weights`` of type
    ``AmpOptimWrapper`` puts both steps under autocast (:mod:`.amp`).

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
        try:
            arch = find_supernet(model).arch_parameters()
        except ValueError as e:
            raise ValueError(f'optim_wrapper: {e}') from None
        arch_ids = {id(p) for p in arch}
        weights = [p for p in model.parameters()
                   if id(p) not in arch_ids and p.requires_grad]
        # the Runner has put the model on its device by now
        device = arch[0].device.type
        cfgs = dict(zip(('weights', 'arch'), amp_cfgs(
            self.cfgs['weights'], self.cfgs['arch'], device)))
        wrappers = {}
        for name, params in (('weights', weights), ('arch', arch)):
            cfg = {'type': 'OptimWrapper', **cfgs[name]}
            cfg['optimizer'] = OPTIMIZERS.build(
                dict(cfg['optimizer'], params=params))
            wrappers[name] = OPTIM_WRAPPERS.build(cfg)
        return OptimWrapperDict(**wrappers)
