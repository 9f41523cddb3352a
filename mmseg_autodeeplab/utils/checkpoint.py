"""Checkpoints that load without running code, and that prove they are intact.

* **Plain data.** mmengine pickles its message hub's ``HistoryBuffer``
  objects (numpy values, bound methods reached through ``builtins.getattr``)
  into every checkpoint. :func:`to_plain` rewrites them as tensors, numbers
  and strings before saving and :func:`from_plain` rebuilds them after
  loading, so our checkpoints load with ``torch.load(weights_only=True)``
  and NO extra allow-listed global. Never allow-list ``getattr`` (or any
  callable that reaches attributes): through ``getattr(getattr,
  '__self__')`` a crafted file reaches the builtins module and ``eval``.
* **Digest.** Each checkpoint gets a sidecar ``<name>.pth.sha256`` (JSON:
  sha256, size, iteration) before it is renamed into place;
  :func:`verify_checkpoint` catches flipped bits that still unpickle.
* **One line.** :func:`safe_load_checkpoint` raises :class:`CheckpointError`
  naming the file and the reason.
"""
import hashlib
import json
import os
import os.path as osp
from collections import OrderedDict

import numpy as np
import torch

from .atomic import atomic_write_json

#: Key marking an mmengine/numpy object rewritten as plain data.
_TAG = '__mmseg_autodeeplab_plain__'
DIGEST_SUFFIX = '.sha256'


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names file and reason."""


# -- plain data -------------------------------------------------------------
def _same_mapping(like, items):
    # OrderedDict stays OrderedDict (weights-only loads it); others -> dict
    return OrderedDict(items) if isinstance(like, OrderedDict) else dict(items)


def to_plain(obj):
    """Copy of ``obj`` with HistoryBuffers and numpy values as plain data
    (containers are copied: the runner's own objects stay untouched)."""
    from mmengine.logging import HistoryBuffer
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {_TAG: 'HistoryBuffer', 'max_length': int(obj.max_length),
                'log': torch.from_numpy(np.array(log)),
                'count': torch.from_numpy(np.array(count))}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return {_TAG: 'list', 'items': [to_plain(x) for x in obj]}
        return {_TAG: 'ndarray', 'data': torch.from_numpy(obj.copy())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return _same_mapping(obj, ((k, to_plain(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def from_plain(obj):
    """Inverse of :func:`to_plain` (leaves already-rich objects alone)."""
    if isinstance(obj, dict):
        tag = obj.get(_TAG)
        if tag == 'HistoryBuffer':
            from mmengine.logging import HistoryBuffer
            return HistoryBuffer(obj['log'].numpy(), obj['count'].numpy(),
                                 obj['max_length'])
        if tag == 'ndarray':
            return obj['data'].numpy()
        if tag == 'list':
            return np.array([from_plain(x) for x in obj['items']],
                            dtype=object)
        return _same_mapping(obj,
                             ((k, from_plain(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_plain(v) for v in obj)
    return obj


# -- digests ----------------------------------------------------------------
def file_sha256(path, chunk=1 << 22):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def record_digest(data_path, final_path, iteration):
    """Write ``final_path``'s sidecar from the (not yet renamed) data file."""
    atomic_write_json(os.fspath(final_path) + DIGEST_SUFFIX, dict(
        file=osp.basename(final_path), sha256=file_sha256(data_path),
        size=osp.getsize(data_path), iter=int(iteration)))


def verify_checkpoint(path):
    """Check ``path`` against its sidecar digest: True if it matches, None
    if none was recorded; :class:`CheckpointError` if unreadable or
    different."""
    side = os.fspath(path) + DIGEST_SUFFIX
    if not osp.isfile(side):
        return None
    try:
        with open(side, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or not record.get('sha256'):
        raise CheckpointError(f'{path}: its digest record {side} is '
                              'unreadable')
    if record.get('size') not in (None, osp.getsize(path)) or \
            file_sha256(path) != record['sha256']:
        raise CheckpointError(
            f'{path}: contents differ from the sha256 recorded when it was '
            'written (corrupted or modified after the run)')
    return True


# -- loading ----------------------------------------------------------------
_LEGACY_GLOBALS = ('mmengine.logging.history_buffer.HistoryBuffer',
                   'builtins.getattr', 'numpy.')


def _describe_load_error(path, exc):
    text = ' '.join(str(exc).split())
    if isinstance(exc, FileNotFoundError):
        return f'{path}: checkpoint file not found'
    if isinstance(exc, IsADirectoryError):
        return f'{path}: is a directory, expected a checkpoint file'
    if 'Unsupported global' in text or 'weights_only' in text:
        name = text.split('GLOBAL ', 1)[-1].split(' ')[0] \
            if 'GLOBAL ' in text else 'a non-tensor object'
        if any(name.startswith(g) for g in _LEGACY_GLOBALS):
            return (f'{path}: written by an earlier mmseg-autodeeplab (or '
                    f'plain mmengine) that pickled {name}; loading it would '
                    'need builtins.getattr allow-listed, which lets a '
                    'crafted file run code, so it is refused. Re-run the '
                    'search, or, only if you wrote the file yourself, '
                    'extract its state_dict with torch.load(..., '
                    'weights_only=False) and torch.save it')
        return (f'{path}: refused by the weights-only loader (it pickles '
                f'{name}, which could run code); not a checkpoint this '
                'project wrote')
    if 'zip archive' in text or 'central directory' in text \
            or 'EOF' in text or 'truncated' in text.lower():
        return f'{path}: truncated or not a checkpoint file ({text[:120]})'
    return f'{path}: cannot be loaded ({type(exc).__name__}: {text[:160]})'


def safe_load_checkpoint(path, map_location='cpu', verify=True, mmap=False):
    """Load a checkpoint weights-only, digest-verified (``verify``, when a
    digest was recorded), optionally memory-mapped (cheap inspection).

    Returns:
        dict: the checkpoint, its message hub as plain data (the Runner's
        :class:`~mmseg_autodeeplab.engine.AtomicCheckpointHook` rebuilds it).

    Raises:
        CheckpointError: naming the file and what is wrong with it.
    """
    path = os.fspath(path)
    if verify:
        verify_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True,
                          mmap=mmap)
    except Exception as e:  # pickle, zip and I/O errors alike
        raise CheckpointError(_describe_load_error(path, e)) from None
    return ckpt


def load_from_local_verified(filename, map_location):
    """mmengine's local-file checkpoint loader, verified and weights-only
    (installed by :func:`mmseg_autodeeplab.compat.apply_compat`)."""
    return safe_load_checkpoint(os.path.expanduser(filename), map_location)
