"""The ``arch_cost`` option of the search loop: a cost table (:mod:`...
arch_cost`) turned into a budget penalty on the α/β loss.

Building a table is not this module's business: a missing table that
``arch_cost.build`` describes is handed to :func:`~mmseg_autodeeplab.
cost_tables.make_table`, imported only then (the loop does not depend on the
builder, the counters and the benchmark helpers behind it).
"""
import functools
import math
import os

import torch

from ..arch_cost import KINDS, LATENCY_DEFAULTS, PENALTIES, CostTable, \
    expected_cost
from ..utils.atomic import atomic_write_json
from ..utils.checks import is_integer
from ..utils.configs import resolve_config
from ..utils.devices import check_device, device_name

#: ``arch_cost.build`` keys of every kind, with their defaults
BUILD_KEYS = dict(config=None, size=None, num_layers=None, num_blocks=None)


def check_build(build, kind):
    """``arch_cost.build`` (how to make a missing table) with every key of
    ``kind`` (:data:`BUILD_KEYS`, latency's ``LATENCY_DEFAULTS``), defaults
    filled in, and ``path``: the config resolved (once, here); a one-line
    ValueError naming ``arch_cost.build.<key>``."""
    if not isinstance(build, dict):
        raise ValueError('arch_cost.build: expected dict(config=RETRAIN_'
                         'CONFIG, size=(H, W), num_layers=L, ...), got '
                         f'{type(build).__name__}')
    spec = dict(BUILD_KEYS,
                **(LATENCY_DEFAULTS if kind == 'latency' else {}))
    key = next((k for k in build if k not in spec), None)
    if key is not None:
        raise ValueError(f'arch_cost.build.{key}: ' + (
            f"only for kind='latency' (kind is {kind!r})"
            if key in LATENCY_DEFAULTS else
            f'unknown key; expected {", ".join(spec)}'))
    spec.update(build)
    config, size = spec['config'], spec['size']
    if not isinstance(config, str) or not config:
        raise ValueError('arch_cost.build.config: expected the path of the '
                         f'retrain config, got {config!r}')
    try:
        spec['path'] = resolve_config(config)
    except FileNotFoundError as e:
        raise ValueError(f'arch_cost.build.config: {e}') from None
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(is_integer(v, 8) for v in size)):
        raise ValueError('arch_cost.build.size: expected (H, W), integers '
                         f'>= 8, got {size!r}')
    spec['size'] = tuple(size)
    for key, low in (('num_layers', 1), ('num_blocks', 1), ('repeats', 1),
                     ('warmup', 0), ('threads', 1)):
        value = spec.get(key)
        if value is not None and not is_integer(value, low):
            raise ValueError(f'arch_cost.build.{key}: expected an integer '
                             f'>= {low}, got {value!r}')
    if kind == 'latency':
        try:
            check_device(spec['device'])
        except ValueError as e:
            raise ValueError(f'arch_cost.build.device: {e}') from None
    return spec


def build_mismatch(data, spec, kind):
    """``'<field> <recorded> vs <asked>'`` for each thing table ``data``
    records other than ``arch_cost.build`` (``spec``) asks for."""
    def hw(v):
        return 'x'.join(map(str, v)) if isinstance(v, (list, tuple)) else v

    config = data.get('config')
    try:  # the same file, named otherwise
        if os.path.samefile(resolve_config(config), spec['path']):
            config = spec['config']
    except (FileNotFoundError, TypeError, AttributeError):
        pass
    fields = [('kind', repr(data.get('kind')), repr(kind)),
              ('size', hw(data.get('input_size')), hw(spec['size'])),
              ('config', config, spec['config'])]
    fields += [(k, data.get(k), spec[k]) for k in ('num_layers', 'num_blocks')]
    if kind == data.get('kind') == 'latency':  # measured here, so threads
        fields += [('device', data.get('device'), device_name(spec['device'])),
                   ('threads', data.get('threads'), spec['threads'])]
    return [f'{key} {recorded} vs {asked}'
            for key, recorded, asked in fields
            if asked is not None and recorded != asked]


def _build_if_missing(path, spec, kind, log):
    """Make the table ``spec`` describes at ``path`` unless it is there;
    a build by another run is waited for (its lock), then reused."""
    from ..cost_tables import make_table
    from ..utils.work_dir_lock import table_lock
    if os.path.isfile(path):
        return
    waited = []
    # two runs started together build the table once: the second waits
    lock = table_lock(path).acquire(wait=True, on_wait=lambda holder: (
        waited.append(holder), log(f'arch_cost: waiting for {holder} to '
                                   f'finish building {path}')))
    try:
        if os.path.isfile(path):
            if waited:
                log(f'arch_cost: {path} was built by the run waited for; '
                    'reusing it')
            return
        h, w = spec['size']
        log(f'arch_cost: {path} not found: building the {kind} cost table '
            f'of {spec["config"]} at {h}x{w} (once; later runs reuse it)')
        options = {k: spec[k] for k in LATENCY_DEFAULTS if k in spec}
        atomic_write_json(path, make_table(
            spec['path'], spec['size'], spec['num_layers'],
            spec['num_blocks'], kind, log=log, name=spec['config'],
            **options))
        log(f'arch_cost: cost table written to {path}')
    finally:
        lock.release()


def ensure_table(path, spec, kind):
    """Make table ``path`` if it is missing, once for the whole run.

    The main process alone looks and builds; every rank, whatever it would
    find on disk, then hears the same outcome
    (:func:`~..utils.launcher.main_decides`), and a failed build stops every
    rank with the same line.
    """
    from mmengine.logging import print_log

    from ..utils.launcher import main_decides
    log = functools.partial(print_log, logger='current')
    main_decides(lambda: _build_if_missing(path, spec, kind, log),
                 f'arch_cost.table: cannot build {path}')


class ArchCost:
    """The ``arch_cost`` option of the search loop: a budget penalty on
    the :func:`expected_cost`, ``'hinge'``: ``weight * max(0, cost / target
    - 1)`` (nothing below the target) or ``'log'``: ``weight * |log(cost /
    target)|`` (towards the target from both sides, scale-free).

    With ``build``, a missing ``table`` is made (once, by the main process)
    and an existing one must record what ``build`` asks for (config, size,
    kind, L/B given; for latency this device and the threads given), else
    it is refused: delete it to rebuild, or change ``table``.

    Args:
        kind (str): ``'macs'`` (multiply-adds) or ``'latency'`` (seconds).
        target (float): the budget, in the table's unit (multiply-adds or
            seconds per image).
        weight (float): >= 0; 0 logs the expected cost without a penalty.
        table (str): a table from ``tools/build_cost_table.py``.
        penalty (str): ``'hinge'`` or ``'log'``.
        build (dict, optional): how to make a missing ``table``
            (:func:`check_build`).

    Raises:
        ValueError: one line naming the bad ``arch_cost.<key>``.
    """

    KEYS = ('kind', 'target', 'weight', 'table', 'penalty', 'build')

    def __init__(self, kind=None, target=None, weight=None, table=None,
                 penalty='hinge', build=None):
        self.table = self._table(kind, target, weight, table, penalty, build)
        self.kind, self.target, self.weight = kind, float(target), float(
            weight)
        self.penalty_kind = penalty

    @staticmethod
    def _table(kind=None, target=None, weight=None, table=None,
               penalty='hinge', build=None, make=True):
        """Every check; the table, made first if missing and ``make``."""
        if kind not in KINDS:
            raise ValueError(f'arch_cost.kind: expected one of {KINDS}, got '
                             f'{kind!r}')
        for key, value, least in (('target', target, 'positive'),
                                  ('weight', weight, 'non-negative')):
            if not (isinstance(value, (int, float))
                    and not isinstance(value, bool) and math.isfinite(value)
                    and (value > 0 or key == 'weight' and value == 0)):
                raise ValueError(f'arch_cost.{key}: expected a finite '
                                 f'{least} number, got {value!r}')
        if penalty not in PENALTIES:
            raise ValueError(f'arch_cost.penalty: expected one of '
                             f'{PENALTIES}, got {penalty!r}')
        if not isinstance(table, (str, os.PathLike)) or not table:
            raise ValueError('arch_cost.table: expected the path of a cost '
                             f'table, got {table!r}')
        spec = None if build is None else check_build(build, kind)
        if spec is not None and make:
            ensure_table(table, spec, kind)  # every rank, one collective
        if not os.path.isfile(table):
            if spec is None:
                raise ValueError(
                    f'arch_cost.table: cost table file {table!r} not found; '
                    'build it with tools/build_cost_table.py CONFIG --size '
                    'HxW --out PATH, or give arch_cost.build=dict(config=, '
                    'size=) to build it at the start of the search')
            return None  # checked only (make=False): built at the start
        try:
            loaded = CostTable.load(table)
        except ValueError as e:
            raise ValueError(f'arch_cost.table: {e}') from None
        diffs = [] if spec is None else build_mismatch(loaded.data, spec,
                                                       kind)
        if diffs:
            raise ValueError(
                f'arch_cost.table: {table} is not the table arch_cost.build '
                f'asks for ({"; ".join(diffs)}: table vs build); delete the '
                'file to rebuild it, or change arch_cost.table')
        if loaded.kind != kind:
            raise ValueError(f'arch_cost.kind: {kind!r} but the table '
                             f'{table} holds {loaded.kind!r} costs')
        return loaded

    @classmethod
    def _kwargs(cls, cfg):
        if not isinstance(cfg, dict):
            raise ValueError('arch_cost: expected a dict(kind=, target=, '
                             f'weight=, table=), got {type(cfg).__name__}')
        unknown = sorted(set(cfg) - set(cls.KEYS))
        if unknown:
            raise ValueError(f'arch_cost.{unknown[0]}: unknown key; '
                             f'expected {", ".join(cls.KEYS)}')
        return dict(cfg)

    @classmethod
    def build(cls, cfg):
        """From the config dict; ``None`` stays ``None`` (off)."""
        if cfg is None or isinstance(cfg, cls):
            return cfg
        return cls(**cls._kwargs(cfg))

    @classmethod
    def check_cfg(cls, cfg):
        """Check ``arch_cost`` without building a table (for
        ``tools/search.py``, before the Runner makes the work_dir): the
        values, ``build``, and an existing table's kind and record."""
        if cfg is not None and not isinstance(cfg, cls):
            cls._table(**cls._kwargs(cfg), make=False)

    def check_supernet(self, net):
        self.table.check_space(net.num_layers, net.num_blocks,
                               net.num_levels, net.primitives)

    def expected(self, net):
        """Expected cost of the supernet's current α/β (scalar tensor)."""
        return expected_cost(net.alphas, net.normalized_betas(), self.table)

    def penalty(self, cost):
        ratio = cost / self.target
        if self.penalty_kind == 'hinge':
            return self.weight * torch.relu(ratio - 1)
        return self.weight * ratio.log().abs()
