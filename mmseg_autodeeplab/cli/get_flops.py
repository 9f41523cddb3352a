"""``tools/get_flops.py``: mmseg's ``get_flops.py``, working on mmengine 0.10.

mmseg 1.2.2's ``tools/analysis_tools/get_flops.py`` passes both
``input_shape`` and ``inputs`` to mmengine's ``get_model_complexity_info``,
which raises ``ValueError: "input_shape" and "inputs" cannot be both set``
on every mmengine >= 0.7.3 (fixed upstream after 1.2.2). This is the same
measurement (random image through the config's data preprocessor, auxiliary
head dropped, SyncBN -> BN, the segmentor's tensor-mode forward) with
``inputs`` only, on any mmseg config. mmengine's "flops" are multiply-adds.
"""
from ..analysis import OneLineParser, load_segmentor
from ..utils import exit_with_error


def count(config, shape, cfg_options=None):
    """``(flops, params)`` as mmseg's get_flops computes them (raw counts)
    for a random ``(H, W)`` = ``shape`` image."""
    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmseg.structures import SegDataSample
    model, _ = load_segmentor(config, cfg_options=cfg_options)
    meta = dict(ori_shape=tuple(shape), pad_shape=tuple(shape))
    data = model.data_preprocessor({
        'inputs': [torch.rand(3, *shape)],
        'data_samples': [SegDataSample(metainfo=meta)]})
    with torch.no_grad():
        out = get_model_complexity_info(model, inputs=data['inputs'],
                                        show_table=False, show_arch=False)
    return out['flops'], out['params']


def main(argv=None):
    from mmengine.analysis.print_helper import _format_size
    from mmengine.config import DictAction
    parser = OneLineParser(description="mmseg's get_flops.py (multiply-"
                           'adds and parameters), fixed for mmengine 0.10')
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs='+', default=[2048, 1024],
                        help='input size: H W, or one value for both')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) < 1:
        parser.error(f'--shape takes one or two positive sizes, got '
                     f'{args.shape}')
    shape = tuple(args.shape) * (2 // len(args.shape))
    try:
        flops, params = count(args.config, shape, args.cfg_options)
    except (OSError, KeyError, ValueError, TypeError) as e:
        where = '' if args.config in str(e) else f'{args.config}: '
        exit_with_error(f'{where}{e}')
    line = '=' * 30
    print(f'{line}\nInput shape: {shape}\nFlops: {_format_size(flops)}\n'
          f'Params: {_format_size(params)}\n{line}')
    print(f'flops (multiply-adds): {flops}\nparams: {params}')
    return 0
