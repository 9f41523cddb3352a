"""The genotype: an immutable, JSON-serialisable description of a found net.

The cell is ``B`` blocks, each the sum of two ``(input, op)`` branches
(``input`` indexes ``[H(l-2), H(l-1), H1, ..., H(i-1)]``, ``op`` names one
of the search space's ``primitives``); the path is one level per layer
(level ``j`` is downsample rate ``4 * 2**j``). The JSON hand-off stores
names (``"H(l-2)"``, ``"sep_conv_3x3"``), never index arrays, and is
validated field by field (:class:`GenotypeError` names file and field).
"""
import json
import os
from dataclasses import dataclass, field
from typing import Tuple

from ..utils.atomic import atomic_write_text
from ..utils.checks import is_integer
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


def _one_line(error, limit):
    return ' '.join(str(error).split())[:limit]


@dataclass(frozen=True)
class SearchSpace:
    """The search space a genotype came from: ``num_layers`` L cells after
    the stem, ``num_blocks`` B per cell, ``primitives`` in α's column
    order, ``strides`` the downsample rate of each level."""
    num_layers: int = 12
    num_blocks: int = 5
    primitives: Tuple[str, ...] = PRIMITIVES
    strides: Tuple[int, ...] = (4, 8, 16, 32)

    def __post_init__(self):
        for name in ('num_layers', 'num_blocks'):
            value = getattr(self, name)
            if not is_integer(value, 1):
                raise GenotypeError(f'search_space.{name}: expected a '
                                    f'positive integer, got {value!r}')
        prims, strides = self.primitives, self.strides
        if not (isinstance(prims, (list, tuple)) and prims
                and all(p in PRIMITIVES for p in prims)
                and len(set(prims)) == len(prims)):
            raise GenotypeError(
                'search_space.primitives: expected distinct names from '
                f'{", ".join(PRIMITIVES)}; got {prims!r:.120}')
        if not (isinstance(strides, (list, tuple)) and strides
                and all(is_integer(s, 1) for s in strides)
                and all(b == 2 * a for a, b in zip(strides, strides[1:]))):
            raise GenotypeError(
                'search_space.strides: expected positive integers, each '
                f'level halving the resolution (e.g. [4, 8, 16, 32]), got '
                f'{strides!r:.80}')
        object.__setattr__(self, 'primitives', tuple(prims))
        object.__setattr__(self, 'strides', tuple(strides))

    @property
    def num_levels(self):
        return len(self.strides)

    def to_dict(self):
        return dict(num_layers=self.num_layers, num_blocks=self.num_blocks,
                    primitives=list(self.primitives),
                    strides=list(self.strides))


@dataclass(frozen=True)
class CellGenotype:
    """A discrete cell: ``blocks``, ``B`` tuples of two ``(input, op)``
    pairs, ordered by input index."""
    blocks: Tuple[Tuple[Tuple[int, str], Tuple[int, str]], ...]

    def __post_init__(self):
        blocks = tuple(tuple(sorted((int(i), str(op)) for i, op in block))
                       for block in self.blocks)
        object.__setattr__(self, 'blocks', blocks)
        # the structure only: whether an op is in the space is Genotype's
        for b, block in enumerate(blocks):
            if len(block) != 2:
                raise GenotypeError(f'cell[{b}]: expected 2 inputs per '
                                    f'block, got {len(block)}')
            for k, (i, op) in enumerate(block):
                if op == ZERO_OP:
                    raise GenotypeError(
                        f'cell[{b}].inputs[{k}].op: the zero operator '
                        f'{ZERO_OP!r} is not a valid choice in a genotype')
                if not 0 <= i < b + 2:
                    raise GenotypeError(
                        f'cell[{b}].inputs[{k}].input: block H{b + 1} can '
                        f'only take {", ".join(input_names(b))}; index {i} '
                        'refers to a block that does not exist yet')

    def describe(self):
        """One line per block, e.g. ``H1 = sep_conv_3x3(H(l-1)) + ...``."""
        return [f'H{b + 1} = ' + ' + '.join(
            f'{op}({input_names(b)[i]})' for i, op in block)
            for b, block in enumerate(self.blocks)]


@dataclass(frozen=True)
class Genotype:
    """A found architecture: the ``cell`` shared by every layer, the
    ``path`` (level of each of the L layers) and their ``search_space``."""
    cell: CellGenotype
    path: Tuple[int, ...]
    search_space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self):
        path = tuple(int(p) for p in self.path)
        object.__setattr__(self, 'path', path)
        space = self.search_space
        if len(path) != space.num_layers:
            raise GenotypeError(f'path: expected {space.num_layers} levels '
                                f'(one per layer), got {len(path)}')
        prev = 0  # the stem's level
        for layer, level in enumerate(path):
            if not 0 <= level < space.num_levels:
                raise GenotypeError(f'path[{layer}]: level {level} outside '
                                    f'0-{space.num_levels - 1}')
            if abs(level - prev) > 1:
                raise GenotypeError(f'path[{layer}]: ' + (
                    f'moves from level {prev} to {level}; a step may change '
                    'the level by at most 1' if layer else 'the first layer '
                    f'must be at level 0 or 1 (the stem is at level 0), got '
                    f'{level}'))
            prev = level
        blocks = self.cell.blocks
        if len(blocks) != space.num_blocks:
            raise GenotypeError(
                f'cell: expected {space.num_blocks} blocks (the search '
                f"space's num_blocks), got {len(blocks)}")
        for b, block in enumerate(blocks):
            for k, (_, op) in enumerate(block):
                if op not in space.primitives:
                    raise GenotypeError(
                        f'cell[{b}].inputs[{k}].op: unknown operator {op!r}; '
                        'the search space has ' + ', '.join(
                            p for p in space.primitives if p != ZERO_OP))

    @property
    def path_strides(self):
        """Downsample rate of each layer, e.g. ``(4, 4, 8, ...)``."""
        return tuple(self.search_space.strides[j] for j in self.path)

    def describe(self):
        """Readable multi-line description (blocks, then path as strides)."""
        return '\n'.join(self.cell.describe() + [
            'path (strides): ' + ' '.join(map(str, self.path_strides))])

    def to_dict(self):
        cell = [dict(name=f'H{b + 1}', inputs=[
            dict(input=input_names(b)[i], op=op) for i, op in block])
            for b, block in enumerate(self.cell.blocks)]
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
        """Build and fully validate a genotype from its JSON dict;
        :class:`GenotypeError` names ``source`` and the field."""
        try:
            return _from_dict(cls, data)
        except GenotypeError as e:
            raise GenotypeError(f'{source}: {e}') from None
        except (TypeError, ValueError, KeyError, AttributeError,
                RecursionError) as e:  # a shape no check foresaw
            raise GenotypeError(f'{source}: malformed genotype ('
                                f'{type(e).__name__}: {_one_line(e, 160)})'
                                ) from None

    @classmethod
    def from_json(cls, text, source='genotype'):
        """Parse and validate genotype JSON (``str`` or UTF-8 ``bytes``)."""
        return cls.from_dict(parse_json(text, source), source)

    @classmethod
    def load(cls, path):
        """Load and validate a genotype JSON file; :class:`GenotypeError`
        names ``path`` and what is wrong with it."""
        return cls.from_dict(read_json(path), source=os.fspath(path))


def parse_json(text, source='genotype'):
    """The JSON value of genotype text (``str`` or UTF-8 ``bytes``), not
    yet validated; :class:`GenotypeError` naming ``source``."""
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode('utf-8')
        return json.loads(text)
    except UnicodeDecodeError as e:
        raise GenotypeError(f'{source}: not UTF-8 text (byte {e.start}); '
                            'a genotype is a JSON file') from None
    except RecursionError:
        raise GenotypeError(f'{source}: JSON nested too deeply for a '
                            'genotype') from None
    except ValueError as e:  # also integers beyond the digit limit
        raise GenotypeError(f'{source}: invalid JSON '
                            f'({_one_line(e, 120)})') from None


def read_json(path):
    """The JSON value of the genotype file ``path`` (read once, at most
    :data:`MAX_FILE_BYTES`), for :meth:`Genotype.from_dict` and the records
    a search adds beside the genotype (``cost``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenotypeError(f'{path}: genotype file not found')
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise GenotypeError(f'{path}: {size} bytes, too large for a '
                                f'genotype (at most {MAX_FILE_BYTES})')
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise GenotypeError(f'{path}: cannot read ({e.strerror})') from None
    return parse_json(data, source=path)


def _expect(data, key, kind, where):
    if not isinstance(data, dict) or key not in data:
        raise GenotypeError(f'{where}: missing field "{key}"')
    if not isinstance(data[key], kind):
        raise GenotypeError(f'{where}.{key}: expected {kind.__name__}, got '
                            f'{type(data[key]).__name__}')
    return data[key]


def _from_dict(cls, data):
    if not isinstance(data, dict):
        raise GenotypeError('expected a JSON object at the top level')
    if data.get('format', FORMAT) != FORMAT:
        raise GenotypeError(
            f'format: expected {FORMAT!r}, got {data.get("format")!r}')
    version = data.get('version', VERSION)
    if not is_integer(version, 1) or version > VERSION:
        newer = is_integer(version, VERSION + 1)
        raise GenotypeError(
            f'version: this mmseg-autodeeplab reads genotype format versions '
            f'1-{VERSION}, got {version!r}'
            + (' (written by a newer release?)' if newer else ''))
    space_d = data.get('search_space', {})
    if not isinstance(space_d, dict):
        raise GenotypeError('search_space: expected an object')
    unknown = set(space_d) - set(SearchSpace.__dataclass_fields__)
    if unknown:
        raise GenotypeError(
            f'search_space: unknown field(s) {sorted(unknown)}')
    cell_d = _expect(data, 'cell', list, 'genotype')
    path = _expect(data, 'path', list, 'genotype')
    for k, level in enumerate(path):
        if not is_integer(level):
            raise GenotypeError(f'path[{k}]: expected an integer level, got '
                                f'{level!r}')
    space = SearchSpace(**{'num_layers': len(path),
                           'num_blocks': len(cell_d), **space_d})
    blocks = []
    for b, block_d in enumerate(cell_d):
        names, pairs = input_names(b), []
        for k, pair in enumerate(_expect(block_d, 'inputs', list,
                                         f'cell[{b}]')):
            where = f'cell[{b}].inputs[{k}]'
            name = _expect(pair, 'input', str, where)
            op = _expect(pair, 'op', str, where)
            if name not in names:
                raise GenotypeError(
                    f'{where}.input: {name!r} is not available to block '
                    f'H{b + 1} (it can take {", ".join(names)}); an input '
                    'must be an earlier block or a cell input')
            pairs.append((names.index(name), op))
        blocks.append(pairs)
    return cls(cell=CellGenotype(blocks), path=path, search_space=space)
