"""Mixed precision for the search: both steps under one autocast.

``optim_wrapper.weights.type='AmpOptimWrapper'`` (what ``tools/search.py
--amp`` sets, as mmseg's ``tools/train.py --amp`` does) makes
:class:`~.optim_constructor.AutoDeepLabOptimWrapperConstructor` build a
:class:`SearchAmpOptimWrapper` for the weights AND for α/β, with one dtype:

* the weight step runs through it as through mmengine's ``AmpOptimWrapper``
  (``model.train_step`` autocasts in ``optim_context``, scales, steps);
* the α/β step autocasts in the same ``optim_context`` and takes its
  gradient of :func:`scale_loss` (α/β stay float32 parameters; the
  softmaxes over them run in float32, see the supernet).

Loss scaling only where the dtype needs it: float16 (dynamic, one scaler per
optimizer, each in the checkpoint with its optimizer); bfloat16 has
float32's exponent range, so its scaler is disabled.
"""
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

#: config ``type`` values that ask for mixed precision
AMP_TYPES = ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper',
             'SearchAmpOptimWrapper', 'mmseg.SearchAmpOptimWrapper')
_DTYPES = {None: None, 'float16': torch.float16, 'bfloat16': torch.bfloat16,
           torch.float16: torch.float16, torch.bfloat16: torch.bfloat16}


def default_device():
    """Where the Runner puts the model: ``'cuda'`` if there is one."""
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def resolve_amp_dtype(dtype, device, key='optim_wrapper.weights.dtype'):
    """The autocast dtype for ``device`` (``None``: float16 on CUDA, as
    mmengine; bfloat16 on CPU, the only one CPU autocast takes here).

    Raises:
        ValueError: one line, for a dtype the device cannot autocast to.
    """
    if dtype not in _DTYPES:
        raise ValueError(f'{key}={dtype!r}: expected None, "float16" or '
                         '"bfloat16"')
    dtype = _DTYPES[dtype]
    if device == 'cpu':
        if dtype not in (None, torch.bfloat16):
            raise ValueError(f'{key}="float16": mixed precision on CPU runs '
                             'in bfloat16 only; set dtype="bfloat16" (or '
                             'None) or run on a GPU')
        return torch.bfloat16
    if device == 'cuda':
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise ValueError(f'{key}="bfloat16": this GPU has no bfloat16; '
                             'set dtype="float16"')
        return dtype or torch.float16
    raise ValueError(f'{key}: mixed precision needs a CPU or CUDA device, '
                     f'got {device!r}')


@OPTIM_WRAPPERS.register_module()
class SearchAmpOptimWrapper(AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` where autocast runs: CUDA (float16,
    bfloat16) and CPU (bfloat16), with loss scaling for float16 only.

    Args:
        loss_scale (str | float | dict): as ``AmpOptimWrapper`` (used only
            with float16).
        dtype (str | torch.dtype, optional): ``'float16'``, ``'bfloat16'``
            or None (the device's default, :func:`resolve_amp_dtype`).
        device (str, optional): ``'cuda'`` / ``'cpu'``; default: where the
            Runner puts the model.
        **kwargs: :class:`~mmengine.optim.OptimWrapper`'s arguments.
    """

    def __init__(self, loss_scale='dynamic', dtype=None, device=None,
                 **kwargs):
        device = device or default_device()
        dtype = resolve_amp_dtype(dtype, device)
        # AmpOptimWrapper.__init__ asserts a GPU; everything else it sets
        # up is set here
        OptimWrapper.__init__(self, **kwargs)
        self.cast_dtype, self.device_type = dtype, device
        self._scale_update_param = None
        enabled = dtype == torch.float16
        if loss_scale == 'dynamic':
            scaler_args = {}
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            scaler_args = dict(init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            scaler_args = dict(loss_scale)
        else:
            raise ValueError(f'optim_wrapper: loss_scale={loss_scale!r}; '
                             'expected "dynamic", a float or a dict')
        self.loss_scaler = torch.amp.GradScaler(device, enabled=enabled,
                                                **scaler_args)


def scale_loss(wrapper, loss):
    """``loss`` times the wrapper's loss scale (float16), else ``loss``:
    what to differentiate when the gradients go to ``wrapper.step()``,
    which unscales them (and skips the step if one is not finite)."""
    scaler = getattr(wrapper, 'loss_scaler', None)
    return loss if scaler is None else scaler.scale(loss)


def amp_cfgs(weights, arch, device):
    """The two wrapper configs with mixed precision resolved: if either
    asks for it, the weights' dtype / loss_scale carry over to α/β so both
    steps run under one autocast; ``(weights, arch)`` dicts."""
    weights, arch = dict(weights), dict(arch)
    if weights.get('type') not in AMP_TYPES:
        if arch.get('type') in AMP_TYPES:
            raise ValueError(
                f'optim_wrapper.arch.type={arch["type"]!r} without mixed '
                'precision for the weights; set optim_wrapper.weights.type='
                '"AmpOptimWrapper" (or tools/search.py --amp): both steps '
                'share one autocast')
        return weights, arch
    for key, cfg in (('weights', weights), ('arch', arch)):
        if cfg.get('type', 'OptimWrapper') not in AMP_TYPES + (
                'OptimWrapper', 'mmengine.OptimWrapper'):
            raise ValueError(f'optim_wrapper.{key}.type={cfg["type"]!r}: '
                             'expected OptimWrapper or AmpOptimWrapper')
    dtype = resolve_amp_dtype(weights.get('dtype'), device)
    weights.update(type='SearchAmpOptimWrapper', dtype=dtype, device=device)
    arch.setdefault('loss_scale', weights.get('loss_scale', 'dynamic'))
    arch.update(type='SearchAmpOptimWrapper', dtype=dtype, device=device)
    return weights, arch
