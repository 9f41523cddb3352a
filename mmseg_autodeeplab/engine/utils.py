"""Helpers shared by the search loop, hooks and the optimizer constructor."""

import contextlib


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


@contextlib.contextmanager
def only_grad_for(module, params):
    """Within the block, of ``module``'s parameters only ``params`` require
    grad; the others' flags are restored on exit.

    For the α/β step: autograd's own backward nodes skip the gradients no
    caller asked for, but a custom autograd Function (the fused supernet's
    kernels) computes every gradient its inputs require; frozen weights
    spare those, and the α/β gradients are the same. The block must hold
    the backward too: checkpointed nodes run their forward again there.
    """
    keep = {id(p) for p in params}
    frozen = [p for p in module.parameters()
              if p.requires_grad and id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
