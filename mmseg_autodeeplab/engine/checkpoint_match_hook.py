"""Refuse a checkpoint that does not fit the model, in one line.

mmengine loads ``load_from`` (and ``mim test``'s ``--checkpoint``, which
mmseg's test.py turns into ``load_from``) with ``strict=False``: a checkpoint
trained with another F, genotype or class count only produces a long list of
"missing keys / size mismatch" warnings, and the run goes on evaluating a
mostly random network. The hook below compares the checkpoint's
``state_dict`` with the model right after the file is read
(``after_load_checkpoint``, before anything is copied) and stops with one
``error: ...`` line and exit status 2 when they differ.
"""
import re

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils.errors import exit_with_error
from .utils import unwrap_model


def _shape(t):
    return list(getattr(t, 'shape', ()))


def compare_state_dicts(model_state, ckpt_state,
                        revise_keys=((r'^module\.', ''), )):
    """Differences between a model's and a checkpoint's state dicts.

    Args:
        model_state (Mapping[str, Tensor]): ``model.state_dict()``.
        ckpt_state (Mapping[str, Tensor]): the checkpoint's ``state_dict``.
        revise_keys (Sequence[tuple[str, str]]): regex substitutions applied
            to checkpoint keys first (mmengine strips ``module.`` too).

    Returns:
        dict: ``missing`` (in the model, not in the checkpoint),
        ``unexpected`` (the reverse) and ``shape`` (``(key, ckpt_shape,
        model_shape)``), each sorted; all empty when they match.
    """
    revised = {}
    for key, value in ckpt_state.items():
        for pattern, repl in revise_keys:
            key = re.sub(pattern, repl, key)
        revised[key] = value
    missing = sorted(set(model_state) - set(revised))
    unexpected = sorted(set(revised) - set(model_state))
    shape = sorted((k, _shape(revised[k]), _shape(model_state[k]))
                   for k in set(model_state) & set(revised)
                   if _shape(revised[k]) != _shape(model_state[k]))
    return dict(missing=missing, unexpected=unexpected, shape=shape)


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

    Runs on every checkpoint the Runner loads (``load_from``, ``--checkpoint``
    of ``mim test``, ``--resume``). Weights loaded through a model's
    ``init_cfg`` (e.g. ImageNet pretraining) do not pass through here.

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
        self.allow_missing = [re.compile(p) for p in allow_missing]
        self.allow_unexpected = [re.compile(p) for p in allow_unexpected]
        self.allow_shape = [re.compile(p) for p in allow_shape]

    @staticmethod
    def _keep(keys, patterns, key=lambda k: k):
        return [k for k in keys
                if not any(p.search(key(k)) for p in patterns)]

    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('state_dict', checkpoint) \
            if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            exit_with_error('the loaded checkpoint has no state_dict')
        model = unwrap_model(runner.model)
        diff = compare_state_dicts(model.state_dict(), state)
        diff['missing'] = self._keep(diff['missing'], self.allow_missing)
        diff['unexpected'] = self._keep(diff['unexpected'],
                                        self.allow_unexpected)
        diff['shape'] = self._keep(diff['shape'], self.allow_shape,
                                   key=lambda item: item[0])
        cfg = getattr(runner, 'cfg', None)
        source = cfg.get('load_from') if cfg is not None else None
        message = describe_mismatch(
            diff, f'checkpoint {source}' if source else 'the checkpoint')
        if message:
            exit_with_error(message)


__all__ = ['CheckpointMatchHook', 'compare_state_dicts', 'describe_mismatch']
