"""Helpers shared by the search loop, hooks and the optimizer constructor."""


def unwrap_model(model):
    """The bare model under (MM)DistributedDataParallel wrappers."""
    while hasattr(model, 'module'):
        model = model.module
    return model


def find_supernet(model):
    """The submodule that owns α/β (defines ``arch_parameters``)."""
    for module in unwrap_model(model).modules():
        if callable(getattr(module, 'arch_parameters', None)):
            return module
    raise ValueError('the model has no module with arch_parameters(); '
                     'expected an AutoDeepLabSupernet backbone')


def split_arch_parameters(model):
    """Return ``(weights, arch)`` lists of parameters, disjoint."""
    arch = []
    for module in model.modules():
        if callable(getattr(module, 'arch_parameters', None)):
            arch.extend(module.arch_parameters())
    arch_ids = {id(p) for p in arch}
    weights = [p for p in model.parameters()
               if id(p) not in arch_ids and p.requires_grad]
    return weights, arch
