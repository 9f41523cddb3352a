"""The genotype: an immutable, JSON-serialisable description of a found net.

A genotype has two parts:

* the cell: ``B`` blocks, each the sum of two ``(input, op)`` branches, where
  ``input`` indexes the block's candidate inputs
  ``[H(l-2), H(l-1), H1, ..., H(i-1)]`` and ``op`` names an operator of
  the search space's ``primitives`` (a subset of :data:`PRIMITIVES`);
* the path: one level per layer (level ``j`` is downsample rate ``4 * 2**j``).

JSON is the hand-off format between search and retraining; it stores names
(``"H(l-2)"``, ``"sep_conv_3x3"``), never index arrays, and is validated
field by field on load (:class:`GenotypeError` names the offending field).
"""
import json
import os
from dataclasses import dataclass, field
from typing import Tuple

from ..utils.atomic import atomic_write_text
from .primitives import PRIMITIVES, ZERO_OP

FORMAT = 'mmseg_autodeeplab.genotype'
VERSION = 1
#: A genotype file is a few kB; anything far larger is not one.
MAX_FILE_BYTES = 1 << 20


class GenotypeError(ValueError):
    """A genotype (file or value) is invalid; the message names the field."""


def input_names(block_index):
    """Names of the candidate inputs of block ``block_index`` (0-based).

    >>> input_names(2)
    ['H(l-2)', 'H(l-1)', 'H1', 'H2']
    """
    return ['H(l-2)', 'H(l-1)'] + [f'H{k + 1}' for k in range(block_index)]


@dataclass(frozen=True)
class SearchSpace:
    """The search space a genotype came from.

    Args:
        num_layers (int): L, cells after the stem.
        num_blocks (int): B, blocks per cell.
        primitives (tuple[str]): operator names, in α's column order.
        strides (tuple[int]): downsample rate of each level.
    """
    num_layers: int = 12
    num_blocks: int = 5
    primitives: Tuple[str, ...] = PRIMITIVES
    strides: Tuple[int, ...] = (4, 8, 16, 32)

    def __post_init__(self):
        for name in ('num_layers', 'num_blocks'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) \
                    or value <= 0:
                raise GenotypeError(
                    f'search_space.{name}: expected a positive integer, got '
                    f'{value!r}')
        object.__setattr__(self, 'primitives', tuple(self.primitives))
        object.__setattr__(self, 'strides', tuple(self.strides))

    @property
    def num_levels(self):
        return len(self.strides)

    def to_dict(self):
        return dict(num_layers=self.num_layers, num_blocks=self.num_blocks,
                    primitives=list(self.primitives),
                    strides=list(self.strides))


@dataclass(frozen=True)
class CellGenotype:
    """A discrete cell.

    Args:
        blocks (tuple): ``B`` blocks, each a tuple of two ``(input, op)``
            pairs ordered by input index.
    """
    blocks: Tuple[Tuple[Tuple[int, str], Tuple[int, str]], ...]

    def __post_init__(self):
        blocks = tuple(
            tuple(sorted((int(i), str(op)) for i, op in block))
            for block in self.blocks)
        object.__setattr__(self, 'blocks', blocks)
        validate_cell(blocks)  # structure only: a cell alone has no space

    def describe(self):
        """One line per block, e.g. ``H1 = sep_conv_3x3(H(l-1)) + ...``."""
        lines = []
        for b, block in enumerate(self.blocks):
            names = input_names(b)
            terms = ' + '.join(f'{op}({names[i]})' for i, op in block)
            lines.append(f'H{b + 1} = {terms}')
        return lines


@dataclass(frozen=True)
class Genotype:
    """A found architecture: a cell, a path and the space they came from.

    Args:
        cell (CellGenotype): the discrete cell shared by every layer.
        path (tuple[int]): level of each of the L layers.
        search_space (SearchSpace): the space searched.
    """
    cell: CellGenotype
    path: Tuple[int, ...]
    search_space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self):
        object.__setattr__(self, 'path', tuple(int(p) for p in self.path))
        validate_path(self.path, self.search_space)
        if len(self.cell.blocks) != self.search_space.num_blocks:
            raise GenotypeError(
                f'cell: expected {self.search_space.num_blocks} blocks (the '
                f'search space\'s num_blocks), got {len(self.cell.blocks)}')
        validate_cell(self.cell.blocks, self.search_space.primitives)

    @property
    def path_strides(self):
        """Downsample rate of each layer, e.g. ``(4, 4, 8, ...)``."""
        return tuple(self.search_space.strides[j] for j in self.path)

    def describe(self):
        """Readable multi-line description (blocks, then path as strides)."""
        return '\n'.join(self.cell.describe() + [
            'path (strides): ' + ' '.join(str(s) for s in self.path_strides)
        ])

    def to_dict(self):
        cell = []
        for b, block in enumerate(self.cell.blocks):
            names = input_names(b)
            cell.append(dict(
                name=f'H{b + 1}',
                inputs=[dict(input=names[i], op=op) for i, op in block]))
        return dict(format=FORMAT, version=VERSION,
                    search_space=self.search_space.to_dict(), cell=cell,
                    path=list(self.path), path_strides=list(self.path_strides))

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2) + '\n'

    def save(self, path):
        """Write the genotype to ``path`` as JSON, atomically."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, data, source='genotype'):
        """Build and fully validate a genotype from its JSON dict.

        Raises:
            GenotypeError: one line naming ``source`` and the bad field.
        """
        try:
            return _from_dict(cls, data)
        except GenotypeError as e:
            raise GenotypeError(f'{source}: {e}') from None
        except (TypeError, ValueError, KeyError, AttributeError,
                RecursionError) as e:  # a shape no check above foresaw
            raise GenotypeError(
                f'{source}: malformed genotype ({type(e).__name__}: '
                f'{" ".join(str(e).split())[:160]})') from None

    @classmethod
    def from_json(cls, text, source='genotype'):
        """Parse and validate genotype JSON (``str`` or UTF-8 ``bytes``)."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode('utf-8')
            except UnicodeDecodeError as e:
                raise GenotypeError(
                    f'{source}: not UTF-8 text (byte {e.start}); a genotype '
                    'is a JSON file') from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenotypeError(f'{source}: invalid JSON ({e})') from None
        except RecursionError:
            raise GenotypeError(f'{source}: JSON nested too deeply for a '
                                'genotype') from None
        except ValueError as e:  # e.g. integers beyond the digit limit
            raise GenotypeError(f'{source}: invalid JSON value '
                                f'({" ".join(str(e).split())[:120]})') \
                from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path):
        """Load and validate a genotype JSON file.

        Raises:
            GenotypeError: naming ``path`` and what is wrong with it.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise GenotypeError(f'{path}: genotype file not found')
        try:
            if os.path.getsize(path) > MAX_FILE_BYTES:
                raise GenotypeError(
                    f'{path}: {os.path.getsize(path)} bytes, too large for a '
                    f'genotype (at most {MAX_FILE_BYTES})')
            with open(path, 'rb') as f:
                data = f.read()
        except OSError as e:
            raise GenotypeError(f'{path}: cannot read ({e.strerror})') \
                from None
        return cls.from_json(data, source=path)


def validate_cell(blocks, primitives=None):
    """Check a cell's blocks; raise :class:`GenotypeError` naming the field.

    Args:
        blocks (Sequence): ``B`` blocks of ``(input, op)`` pairs.
        primitives (Sequence[str], optional): the operators of the cell's
            search space; None checks the structure only.
    """
    for b, block in enumerate(blocks):
        if len(block) != 2:
            raise GenotypeError(
                f'cell[{b}]: expected 2 inputs per block, got {len(block)}')
        for k, (i, op) in enumerate(block):
            where = f'cell[{b}].inputs[{k}]'
            if op == ZERO_OP:
                raise GenotypeError(
                    f'{where}.op: the zero operator {ZERO_OP!r} is not a '
                    'valid choice in a genotype')
            if primitives is not None and op not in primitives:
                raise GenotypeError(
                    f'{where}.op: unknown operator {op!r}; the search space '
                    'has ' + ', '.join(p for p in primitives if p != ZERO_OP))
            if not 0 <= i < b + 2:
                raise GenotypeError(
                    f'{where}.input: block H{b + 1} can only take '
                    f'{", ".join(input_names(b))}; index {i} refers to a '
                    'block that does not exist yet')


def validate_path(path, space):
    """Check a level path against a search space; raise GenotypeError."""
    if len(path) != space.num_layers:
        raise GenotypeError(
            f'path: expected {space.num_layers} levels (one per layer), got '
            f'{len(path)}')
    top = space.num_levels - 1
    for layer, level in enumerate(path):
        if not 0 <= level <= top:
            raise GenotypeError(
                f'path[{layer}]: level {level} outside 0-{top}')
    if path[0] not in (0, 1):
        raise GenotypeError(
            f'path[0]: the first layer must be at level 0 or 1 (the stem is '
            f'at level 0), got {path[0]}')
    for layer in range(1, len(path)):
        if abs(path[layer] - path[layer - 1]) > 1:
            raise GenotypeError(
                f'path[{layer}]: moves from level {path[layer - 1]} to '
                f'{path[layer]}; a step may change the level by at most 1')


def _expect(data, key, kind, where):
    if not isinstance(data, dict) or key not in data:
        raise GenotypeError(f'{where}: missing field "{key}"')
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else '/'.join(
            k.__name__ for k in kind)
        raise GenotypeError(
            f'{where}.{key}: expected {names}, got {type(value).__name__}')
    return value


def _check_space_lists(space_d):
    """search_space.primitives / .strides: the right types and values."""
    prims = space_d.get('primitives', PRIMITIVES)
    if not isinstance(prims, (list, tuple)) or not prims or not all(
            isinstance(p, str) for p in prims):
        raise GenotypeError('search_space.primitives: expected a non-empty '
                            f'list of operator names, got {prims!r:.80}')
    unknown = [p for p in prims if p not in PRIMITIVES]
    if unknown or len(set(prims)) != len(prims):
        raise GenotypeError(
            'search_space.primitives: expected distinct names from '
            f'{", ".join(PRIMITIVES)}; got {list(prims)!r:.120}')
    strides = space_d.get('strides', (4, 8, 16, 32))
    if not isinstance(strides, (list, tuple)) or not strides or not all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0
            for x in strides):
        raise GenotypeError('search_space.strides: expected a non-empty list '
                            f'of positive integers, got {strides!r:.80}')
    if any(b != 2 * a for a, b in zip(strides, strides[1:])):
        raise GenotypeError('search_space.strides: each level must halve the '
                            f'resolution (e.g. [4, 8, 16, 32]), got '
                            f'{list(strides)!r:.80}')


def _from_dict(cls, data):
    if not isinstance(data, dict):
        raise GenotypeError('expected a JSON object at the top level')
    if data.get('format', FORMAT) != FORMAT:
        raise GenotypeError(
            f'format: expected {FORMAT!r}, got {data.get("format")!r}')
    version = data.get('version', VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or \
            not 1 <= version <= VERSION:
        raise GenotypeError(
            f'version: this mmseg-autodeeplab reads genotype format versions '
            f'1-{VERSION}, got {version!r}'
            + (' (written by a newer release?)'
               if isinstance(version, int) and version > VERSION else ''))
    space_d = data.get('search_space', {})
    if not isinstance(space_d, dict):
        raise GenotypeError('search_space: expected an object')
    known = {'num_layers', 'num_blocks', 'primitives', 'strides'}
    unknown = set(space_d) - known
    if unknown:
        raise GenotypeError(
            f'search_space: unknown field(s) {sorted(unknown)}')
    _check_space_lists(space_d)
    cell_d = _expect(data, 'cell', list, 'genotype')
    path = _expect(data, 'path', list, 'genotype')
    for k, level in enumerate(path):
        if not isinstance(level, int) or isinstance(level, bool):
            raise GenotypeError(f'path[{k}]: expected an integer level, got '
                                f'{level!r}')
    num_blocks = space_d.get('num_blocks', len(cell_d))
    space = SearchSpace(
        num_layers=space_d.get('num_layers', len(path)),
        num_blocks=num_blocks,
        primitives=tuple(space_d.get('primitives', PRIMITIVES)),
        strides=tuple(space_d.get('strides', (4, 8, 16, 32))))
    if len(cell_d) != space.num_blocks:
        raise GenotypeError(
            f'cell: expected {space.num_blocks} blocks (search_space.'
            f'num_blocks), got {len(cell_d)}')
    blocks = []
    for b, block_d in enumerate(cell_d):
        where = f'cell[{b}]'
        inputs = _expect(block_d, 'inputs', list, where)
        names = input_names(b)
        pairs = []
        for k, pair in enumerate(inputs):
            pw = f'{where}.inputs[{k}]'
            name = _expect(pair, 'input', str, pw)
            op = _expect(pair, 'op', str, pw)
            if name not in names:
                valid = ', '.join(names)
                raise GenotypeError(
                    f'{pw}.input: {name!r} is not available to block '
                    f'H{b + 1} (it can take {valid}); an input must be an '
                    'earlier block or a cell input')
            pairs.append((names.index(name), op))
        blocks.append(pairs)
    return cls(cell=CellGenotype(tuple(tuple(p) for p in blocks)),
               path=tuple(path), search_space=space)
