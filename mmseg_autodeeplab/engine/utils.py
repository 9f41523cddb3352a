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
