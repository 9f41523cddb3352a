"""Refuse a checkpoint that does not fit the model, in one line.

mmengine loads ``load_from`` (also ``mim test --checkpoint``) with
``strict=False``: a checkpoint trained with another F, genotype or class
count only produces "missing keys / size mismatch" warnings, and the run
goes on evaluating a mostly random network.
"""
import re

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils.errors import exit_with_error
from .utils import unwrap_model


def compare_state_dicts(model_state, ckpt_state):
    """Differences between a model's and a checkpoint's state dicts.

    Checkpoint keys lose a leading ``module.`` first, as in mmengine.

    Returns:
        dict: ``missing`` (in the model, not in the checkpoint),
        ``unexpected`` (the reverse) and ``shape`` (``(key, ckpt_shape,
        model_shape)``), each sorted; all empty when they match.
    """
    ckpt = {re.sub(r'^module\.', '', k): list(getattr(v, 'shape', ()))
            for k, v in ckpt_state.items()}
    model = {k: list(getattr(v, 'shape', ())) for k, v in model_state.items()}
    return dict(missing=sorted(set(model) - set(ckpt)),
                unexpected=sorted(set(ckpt) - set(model)),
                shape=sorted((k, ckpt[k], model[k])
                             for k in set(model) & set(ckpt)
                             if ckpt[k] != model[k]))


def describe_mismatch(diff, source='checkpoint'):
    """One line summarising :func:`compare_state_dicts`'s result, or ''."""
    parts = []
    if diff['shape']:
        key, ck, mo = diff['shape'][0]
        parts.append(f'{len(diff["shape"])} tensors with another shape '
                     f'(first: {key}: checkpoint {ck} vs model {mo})')
    if diff['missing']:
        parts.append(f'{len(diff["missing"])} model tensors missing from it '
                     f'(first: {diff["missing"][0]})')
    if diff['unexpected']:
        parts.append(f'{len(diff["unexpected"])} tensors the model does not '
                     f'have (first: {diff["unexpected"][0]})')
    if not parts:
        return ''
    return (f'{source} does not match the model of this config: '
            + '; '.join(parts) + '. It was trained with another config '
            '(filter_multiplier, genotype, num_classes, ...): test it with '
            'that config')


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Stop with one line when a loaded checkpoint does not fit the model.

    Runs on every checkpoint the Runner loads (``load_from``, ``mim test
    --checkpoint``, ``--resume``), right after the file is read and before
    anything is copied; weights loaded through a model's ``init_cfg`` (e.g.
    ImageNet pretraining) do not pass through here.

    Args:
        allow_missing (Sequence[str]): regexes of model keys that may be
            absent from the checkpoint (e.g. ``'^decode_head\\.conv_seg'``
            to fine-tune with another class count).
        allow_unexpected (Sequence[str]): regexes of checkpoint keys the
            model may lack (e.g. ``'^auxiliary_head\\.'``).
        allow_shape (Sequence[str]): regexes of keys whose shapes may
            differ.
    """
    priority = 'VERY_HIGH'

    def __init__(self, allow_missing=(), allow_unexpected=(), allow_shape=()):
        allowed = dict(missing=allow_missing, unexpected=allow_unexpected,
                       shape=allow_shape)
        self.allowed = {kind: [re.compile(p) for p in patterns]
                        for kind, patterns in allowed.items()}

    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('state_dict', checkpoint) \
            if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            exit_with_error('the loaded checkpoint has no state_dict')
        diff = compare_state_dicts(unwrap_model(runner.model).state_dict(),
                                   state)
        for kind, patterns in self.allowed.items():
            diff[kind] = [d for d in diff[kind] if not any(
                p.search(d[0] if kind == 'shape' else d)
                for p in patterns)]
        source = runner.cfg.get('load_from')
        message = describe_mismatch(
            diff, f'checkpoint {source}' if source else 'the checkpoint')
        if message:
            exit_with_error(message)


__all__ = ['CheckpointMatchHook', 'compare_state_dicts', 'describe_mismatch']
