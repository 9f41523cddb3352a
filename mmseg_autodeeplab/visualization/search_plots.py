"""Plots of an Auto-DeepLab search, drawn from ``search_history.json``.

Pure functions: each takes the loaded history (or one entry of it, or a
genotype) and an output path, draws one figure with matplotlib's Agg canvas
(no pyplot, no window), writes it as PNG atomically (temp file in the same
folder, then :func:`os.replace`) and returns the data it highlighted, so a
caller (or a test) can check what was drawn:

* :func:`plot_alpha_heatmap` -- the softmaxed α (edges x ops), decoded choices
  outlined; returns the outlined ``(edge_row, op_name)`` cells;
* :func:`plot_beta_trellis` -- β as a layer x level trellis with the decoded
  path; returns the path's levels;
* :func:`plot_cell` -- the decoded cell as a small graph; returns its edges;
* :func:`plot_search_curves` -- supernet mIoU and α/β entropy per epoch;
  returns the plotted series.

A history entry (written by :class:`~mmseg_autodeeplab.engine.GenotypeHook`)
holds ``epoch``, ``iter``, ``arch_active``, ``mIoU``, ``alpha_entropy``,
``beta_entropy``, ``alpha`` (softmaxed, ``(E, P)``), ``beta`` (normalised,
``(L, levels, 3)``) and ``genotype`` (the genotype dict). The highlighted
choices are the entry's recorded genotype (it may carry a forced end level);
an entry without one is decoded from its α/β with :func:`decode_cell` and
:func:`decode_path`.

``python tools/plot_search.py WORK_DIR`` runs :func:`main`.
"""
import argparse
import json
import math
import os
import os.path as osp
import secrets
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, Patch, Rectangle
from matplotlib.path import Path
from matplotlib.ticker import MaxNLocator

from ..search_space import (PRIMITIVES, ZERO_OP, CellGenotype, Genotype,
                            GenotypeError, decode_cell, decode_path,
                            input_names, max_level, num_edges)

HISTORY_FILE = 'search_history.json'
PLOT_FILES = dict(alpha='alpha_heatmap.png', beta='beta_trellis.png',
                  cell='cell.png', curves='search_curves.png')
PATH_COLOR = '#e8590c'
CHOICE_COLOR = '#ff2d55'
DPI = 130


class SearchHistoryError(ValueError):
    """The search history (file or entry) is unusable; one-line message."""


# --------------------------------------------------------------- loading ---
def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def load_history(path):
    """Load and check ``search_history.json`` (a file or its work_dir).

    Every entry is checked for the fields the curves need; the α/β/genotype
    of an entry are checked when it is drawn (:func:`check_entry`).

    Returns:
        list[dict]: the entries, oldest first (never empty).

    Raises:
        SearchHistoryError: one line naming the file and the problem.
    """
    path = os.fspath(path)
    if osp.isdir(path):
        path = osp.join(path, HISTORY_FILE)
    if not osp.isfile(path):
        raise SearchHistoryError(f'{path}: file not found')
    try:
        with open(path, encoding='utf-8') as f:
            history = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SearchHistoryError(f'{path}: invalid JSON ({e})') from None
    check_history(history, source=path)
    return history


def check_history(history, source='search history'):
    """Check the per-entry scalar fields; raise :class:`SearchHistoryError`."""
    if not isinstance(history, list):
        raise SearchHistoryError(
            f'{source}: expected a JSON list of entries, got '
            f'{type(history).__name__}')
    if not history:
        raise SearchHistoryError(
            f'{source}: the history is empty (no validation interval has '
            'finished yet)')
    for k, entry in enumerate(history):
        where = f'{source}: entry {k}'
        if not isinstance(entry, dict):
            raise SearchHistoryError(
                f'{where}: expected an object, got {type(entry).__name__}')
        epoch = entry.get('epoch')
        if not _is_number(epoch) or epoch < 0:
            raise SearchHistoryError(
                f'{where}: "epoch" must be a non-negative number, got '
                f'{epoch!r}')
        for key in ('mIoU', 'alpha_entropy', 'beta_entropy'):
            value = entry.get(key)
            if value is not None and not _is_number(value):
                raise SearchHistoryError(
                    f'{where}: "{key}" must be a number or null, got '
                    f'{value!r}')


def _array(entry, key, ndim, where):
    if key not in entry:
        raise SearchHistoryError(f'{where}: missing field "{key}"')
    try:
        arr = np.asarray(entry[key], dtype=float)
    except (TypeError, ValueError):
        raise SearchHistoryError(
            f'{where}: "{key}" is not a rectangular array of numbers') \
            from None
    if arr.ndim != ndim or arr.size == 0:
        raise SearchHistoryError(
            f'{where}: "{key}" must be a non-empty {ndim}-D array, got shape '
            f'{arr.shape}')
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1 + 1e-6:
        raise SearchHistoryError(
            f'{where}: "{key}" must hold probabilities in [0, 1]')
    return arr


def check_entry(entry, where='entry'):
    """Validate one history entry for drawing.

    Returns:
        tuple: ``(alpha (E, P), beta (L, levels, 3), genotype or None)``,
        ``genotype`` being the recorded :class:`Genotype` when present.

    Raises:
        SearchHistoryError: one line naming ``where`` and the field.
    """
    if not isinstance(entry, dict):
        raise SearchHistoryError(
            f'{where}: expected an object, got {type(entry).__name__}')
    alpha = _array(entry, 'alpha', 2, where)
    beta = _array(entry, 'beta', 3, where)
    num_blocks = _blocks_from_rows(alpha.shape[0])
    if num_blocks is None:
        raise SearchHistoryError(
            f'{where}: "alpha" has {alpha.shape[0]} rows; expected '
            '2+3+...+(B+1) (20 for 5 blocks)')
    if beta.shape[2] != 3 or beta.shape[1] < 2:
        raise SearchHistoryError(
            f'{where}: "beta" must have shape (layers, levels, 3), got '
            f'{beta.shape}')
    genotype = None
    if entry.get('genotype') is not None:
        try:
            genotype = Genotype.from_dict(entry['genotype'],
                                          source=f'{where}: genotype')
        except GenotypeError as e:
            raise SearchHistoryError(str(e)) from None
        space = genotype.search_space
        if len(space.primitives) != alpha.shape[1]:
            raise SearchHistoryError(
                f'{where}: "alpha" has {alpha.shape[1]} columns but the '
                f'genotype\'s search space has {len(space.primitives)} '
                'primitives')
        if space.num_blocks != num_blocks:
            raise SearchHistoryError(
                f'{where}: "alpha" has {alpha.shape[0]} rows ({num_blocks} '
                f'blocks) but the genotype has {space.num_blocks} blocks')
        if space.num_layers != beta.shape[0] or \
                space.num_levels != beta.shape[1]:
            raise SearchHistoryError(
                f'{where}: "beta" has shape {beta.shape} but the genotype has '
                f'{space.num_layers} layers and {space.num_levels} levels')
    elif alpha.shape[1] != len(PRIMITIVES):
        raise SearchHistoryError(
            f'{where}: "alpha" has {alpha.shape[1]} columns; expected '
            f'{len(PRIMITIVES)} (PRIMITIVES) when no genotype is recorded')
    return alpha, beta, genotype


def _blocks_from_rows(rows):
    b = 0
    while num_edges(b) < rows:
        b += 1
    return b if b > 0 and num_edges(b) == rows else None


def _edge_offsets(num_blocks):
    return [num_edges(b) for b in range(num_blocks)]


def _log(p):
    with np.errstate(divide='ignore'):
        return np.log(p)


def entry_choices(entry, where='entry'):
    """The cell and path an entry's plots highlight.

    The recorded genotype when there is one, else the decode of the entry's
    α (:func:`decode_cell`) and β (:func:`decode_path`).

    Returns:
        tuple: ``(CellGenotype, list[int] path, tuple primitives,
        tuple strides)``.
    """
    alpha, beta, genotype = check_entry(entry, where)
    if genotype is not None:
        space = genotype.search_space
        return (genotype.cell, list(genotype.path), space.primitives,
                space.strides)
    try:
        cell = decode_cell(_log(alpha), PRIMITIVES)
        path = decode_path(beta)
    except (ValueError, GenotypeError) as e:
        raise SearchHistoryError(f'{where}: cannot decode ({e})') from None
    strides = tuple(4 * 2**j for j in range(beta.shape[1]))
    return cell, path, PRIMITIVES, strides


# --------------------------------------------------------------- drawing ---
def _figure(figsize):
    fig = Figure(figsize=figsize, layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out_path, dpi=DPI):
    """Write ``fig`` as PNG to ``out_path`` atomically; return the path."""
    out_path = os.fspath(out_path)
    folder = osp.dirname(osp.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    # not mkstemp: its 0600 mode would survive the rename; 'xb' creates the
    # file with the usual umask-derived mode (readable like any plot)
    tmp = osp.join(folder, f'.{osp.basename(out_path)}.{os.getpid()}.'
                   f'{secrets.token_hex(4)}.tmp')
    try:
        with open(tmp, 'xb') as f:
            fig.savefig(f, format='png', dpi=dpi, facecolor='white')
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    return out_path


def _entry_label(entry):
    parts = []
    if _is_number(entry.get('epoch')):
        parts.append(f'epoch {entry["epoch"]:g}')
    if _is_number(entry.get('iter')):
        parts.append(f'iter {entry["iter"]:g}')
    return ', '.join(parts)


def _text_color(rgba):
    r, g, b = rgba[:3]
    return 'black' if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else 'white'


def plot_alpha_heatmap(entry, out_path, title=None):
    """Heatmap of the softmaxed α of one history entry.

    Rows are the cell's edges (``"H2 ← H(l-1)"``: block and input), columns
    the operators; every cell is annotated with its weight and the decoded
    choices (see :func:`entry_choices`) are outlined.

    Returns:
        list[tuple[int, str]]: the outlined ``(edge_row, op_name)`` cells,
        sorted by row (two per block).
    """
    alpha, _, _ = check_entry(entry)
    cell, _, primitives, _ = entry_choices(entry)
    num_blocks = len(cell.blocks)
    offsets = _edge_offsets(num_blocks)
    rows, cols = alpha.shape
    labels = [f'H{b + 1} ← {name}' for b in range(num_blocks)
              for name in input_names(b)]
    chosen = sorted((offsets[b] + i, op)
                    for b, block in enumerate(cell.blocks) for i, op in block)

    fig = _figure((1.05 * cols + 3.2, 0.42 * rows + 2.0))
    ax = fig.add_subplot()
    # the colour range is the data's: an early, near-uniform α still shows
    # which weights lead (the colour bar gives the scale)
    low, high = float(alpha.min()), float(alpha.max())
    norm = Normalize(low, high if high > low else low + 1e-9)
    fmt = '.3f' if high - low < 0.05 else '.2f'
    image = ax.imshow(alpha, cmap='viridis', norm=norm, aspect='auto',
                      interpolation='nearest')
    for r in range(rows):
        for c in range(cols):
            value = alpha[r, c]
            ax.text(c, r, format(value, fmt), ha='center', va='center',
                    fontsize=8.5, color=_text_color(image.cmap(norm(value))))
    for start in offsets[1:]:
        ax.axhline(start - 0.5, color='white', lw=2.5)
    for row, op in chosen:
        ax.add_patch(Rectangle((primitives.index(op) - 0.5, row - 0.5), 1, 1,
                               fill=False, ec=CHOICE_COLOR, lw=2.8,
                               zorder=3))
    ax.set_xticks(range(cols), [
        f'{p}\n(never chosen)' if p == ZERO_OP else p for p in primitives],
        rotation=35, ha='right', rotation_mode='anchor', fontsize=9.5)
    ax.set_yticks(range(rows), labels, fontsize=9.5)
    ax.tick_params(length=0)
    ax.set_xlabel('operator')
    ax.set_ylabel('edge (block ← input)')
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    bar.set_label('softmax(α) over operators')
    ax.legend(handles=[Patch(fill=False, ec=CHOICE_COLOR, lw=2.5,
                             label='decoded choice')],
              loc='lower center', bbox_to_anchor=(0.5, 1.0), frameon=False,
              fontsize=9)
    if title is None:
        title = 'Cell weights α'
        label = _entry_label(entry)
        title += f' ({label})' if label else ''
    fig.suptitle(title, fontsize=12)
    _save(fig, out_path)
    return chosen


def _trellis_edges(num_layers, num_levels):
    """Yield ``(layer, src_level, move, dst_level)`` of every reachable edge.

    ``layer`` is 0-based; the source is at layer ``layer - 1`` (-1: stem).
    """
    for layer in range(num_layers):
        top_src = 0 if layer == 0 else max_level(layer - 1, num_levels)
        for src in range(top_src + 1):
            for move in range(3):
                dst = src + move - 1
                if 0 <= dst <= max_level(layer, num_levels):
                    yield layer, src, move, dst


def plot_beta_trellis(entry, out_path, title=None, annotate=None):
    """Trellis of the network-level transition probabilities β.

    x: the stem then layers 1..L; y: levels (stride 4 at the top). Nodes are
    drawn at reachable positions only; each possible move is a segment whose
    width and shade grow with its probability; the decoded path (see
    :func:`entry_choices`) is the thick coloured line.

    Args:
        annotate (bool, optional): write every move's probability; default
            only for L <= 6 (otherwise only the path's moves are annotated).

    Returns:
        list[int]: the highlighted level of each of the L layers.
    """
    _, beta, _ = check_entry(entry)
    _, path, _, strides = entry_choices(entry)
    num_layers, num_levels, _ = beta.shape
    if annotate is None:
        annotate = num_layers <= 6
    levels = [0] + list(path)  # stem first

    fig = _figure((max(6.5, 0.82 * (num_layers + 1) + 2.8), 1.05 * num_levels
                   + 2.3))
    ax = fig.add_subplot()
    cmap = _truncated_cmap('Blues', 0.3, 1.0)
    segments, widths, colors, probs = [], [], [], []
    for layer, src, move, dst in _trellis_edges(num_layers, num_levels):
        p = float(beta[layer, src, move])
        segments.append([(layer, src), (layer + 1, dst)])
        widths.append(0.4 + 5.0 * p)
        rgba = list(cmap(p))
        rgba[3] = 0.25 + 0.75 * p
        colors.append(rgba)
        probs.append((layer, src, move, dst, p))
    ax.add_collection(LineCollection(segments, linewidths=widths,
                                     colors=colors, capstyle='round',
                                     zorder=1))
    on_path = set()
    for layer in range(num_layers):
        on_path.add((layer, levels[layer], levels[layer + 1]))
    ax.plot(range(num_layers + 1), levels, color=PATH_COLOR, lw=4.5,
            alpha=0.9, solid_capstyle='round', zorder=2)
    # near-uniform β (early in the search): 3 decimals show what decides
    fmt = '.3f' if max(abs(p - 1 / (2 if src in (0, num_levels - 1) else 3))
                       for _, src, _, _, p in probs) < 0.05 else '.2f'
    for layer, src, move, dst, p in probs:
        if not annotate and (layer, src, dst) not in on_path:
            continue
        t = 0.32  # off the midpoint, where the crossing moves intersect
        x, y = layer + t, src + t * (dst - src)
        # along the move: the angle is mapped through the data transform
        ax.text(x, y, format(p, fmt), fontsize=7.5, ha='center', va='center',
                zorder=4, rotation=math.degrees(math.atan2(dst - src, 1)),
                transform_rotates_text=True, rotation_mode='anchor',
                bbox=dict(boxstyle='round,pad=0.12', fc='white', ec='none',
                          alpha=0.85))
    xs, ys = [0], [0]
    for layer in range(num_layers):
        for level in range(max_level(layer, num_levels) + 1):
            xs.append(layer + 1)
            ys.append(level)
    ax.scatter(xs, ys, s=70, facecolor='white', edgecolor='0.25', lw=1.2,
               zorder=3)
    ax.scatter(range(num_layers + 1), levels, s=85, facecolor=PATH_COLOR,
               edgecolor='0.15', lw=1.2, zorder=5)

    ax.set_xlim(-0.5, num_layers + 0.5)
    ax.set_ylim(num_levels - 0.5, -0.5)  # finest level at the top
    ax.set_xticks(range(num_layers + 1),
                  ['stem'] + [str(k) for k in range(1, num_layers + 1)])
    ax.set_yticks(range(num_levels), [f'1/{s}' for s in strides])
    ax.set_xlabel('layer')
    ax.set_ylabel('spatial resolution (downsample rate)')
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)
    ax.grid(axis='y', color='0.93', zorder=0)
    ax.set_axisbelow(True)
    mappable = _scalar_mappable(cmap)
    bar = fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label('transition probability β')
    handles = [
        Line2D([], [], color=PATH_COLOR, lw=4.5, marker='o', mec='0.15',
               label='decoded path'),
        Line2D([], [], color=cmap(0.8), lw=3, label='move (width ∝ β)'),
        Line2D([], [], ls='', marker='o', mfc='white', mec='0.25', ms=8,
               label='reachable (layer, level)'),
    ]
    fig.legend(handles=handles, loc='outside lower center', ncols=3,
               frameon=False, fontsize=9)
    if title is None:
        label = _entry_label(entry)
        title = 'Network-level transitions β' + (f' ({label})' if label
                                                 else '')
        title += '\ndecoded path strides: ' + ' '.join(
            str(strides[j]) for j in path)
    fig.suptitle(title, fontsize=11.5)
    _save(fig, out_path)
    return list(path)


def _truncated_cmap(name, low, high):
    from matplotlib import colormaps
    from matplotlib.colors import LinearSegmentedColormap
    base = colormaps[name]
    return LinearSegmentedColormap.from_list(
        f'{name}_{low}_{high}', base(np.linspace(low, high, 256)))


def _scalar_mappable(cmap):
    from matplotlib.cm import ScalarMappable
    return ScalarMappable(norm=Normalize(0, 1), cmap=cmap)


def _op_colors(primitives):
    from matplotlib import colormaps
    tab = colormaps['tab10']
    return {op: tab(k % 10) for k, op in enumerate(primitives)}


def plot_cell(genotype, out_path, title=None):
    """The decoded cell as an arc diagram.

    Nodes left to right: ``H(l-2)``, ``H(l-1)``, ``H1..HB``, ``H(l)``. Every
    chosen branch is an arc above the row labelled with its operator; the
    concatenation of the blocks into ``H(l)`` is drawn as dashed arcs below.

    Args:
        genotype (Genotype | CellGenotype | dict): the cell to draw (a dict
            is a genotype dict as in ``genotype.json``).

    Returns:
        list[tuple[str, str, str]]: the labelled edges ``(input, block, op)``
        in block order.
    """
    path_note = None
    if isinstance(genotype, dict):
        genotype = Genotype.from_dict(genotype)
    if isinstance(genotype, Genotype):
        primitives = genotype.search_space.primitives
        path_note = 'path (strides): ' + ' '.join(
            str(s) for s in genotype.path_strides)
        cell = genotype.cell
    elif isinstance(genotype, CellGenotype):
        cell, primitives = genotype, PRIMITIVES
    else:
        raise TypeError('genotype: expected a Genotype, CellGenotype or '
                        f'dict, got {type(genotype).__name__}')
    num_blocks = len(cell.blocks)
    names = input_names(num_blocks) + ['H(l)']
    out = len(names) - 1
    dx, radius = 3.0, 0.62
    xs = [k * dx for k in range(len(names))]
    ops = [(i, b + 2, op) for b, block in enumerate(cell.blocks)
           for i, op in block]
    cats = [(b + 2, out, None) for b in range(num_blocks)]

    def height(span):  # curve midpoint above (+) / below (-) the row
        return 1.0 + 0.7 * (span - 1)

    def cat_depth(span):
        return 0.75 + 0.3 * (span - 1)

    # ports: every edge leaves/enters its circle at its own angle, longer
    # edges nearer the top (bottom for the concat), so arcs never bundle
    ports = {}
    for edges, out_range, in_range in (
            (ops, (25, 80), (155, 100)), (cats, (-60, -60), (-170, -95))):
        for node in range(len(names)):
            for key, lo_hi, side in ((0, out_range, 'out'),
                                     (1, in_range, 'in')):
                mine = sorted((e for e in edges if e[key] == node),
                              key=lambda e: (e[1] - e[0], e[0]))
                angles = np.linspace(*lo_hi, len(mine)) if len(mine) > 1 \
                    else [sum(lo_hi) / 2] * len(mine)
                for e, angle in zip(mine, angles):
                    ports[(e, side)] = math.radians(angle)

    def curve(edge, level):
        """Cubic arch from port to port, vertical at both ends."""
        src, dst, _ = edge
        a, b = ports[(edge, 'out')], ports[(edge, 'in')]
        p0 = np.array([xs[src] + radius * math.cos(a), radius * math.sin(a)])
        p3 = np.array([xs[dst] + radius * math.cos(b), radius * math.sin(b)])
        lift = np.array([0, (level - (p0[1] + p3[1]) / 2) / 0.75])
        points = [p0, p0 + lift, p3 + lift, p3]
        # label anchor: the curve point above the middle of the two nodes
        # (not t = 1/2, which the ports shift sideways)
        t = np.linspace(0, 1, 401)[:, None]
        bezier = ((1 - t)**3 * points[0] + 3 * (1 - t)**2 * t * points[1]
                  + 3 * (1 - t) * t**2 * points[2] + t**3 * points[3])
        mid = bezier[np.argmin(abs(bezier[:, 0] - (xs[src] + xs[dst]) / 2))]
        return Path(points, [Path.MOVETO] + [Path.CURVE4] * 3), mid

    top = height(max(d - s for s, d, _ in ops)) + 0.55
    bottom = cat_depth(num_blocks) + 1.0
    width = xs[-1] + 2 * radius + 0.6
    scale = 0.58  # inches per data unit
    fig = _figure((width * scale + 0.4, (top + bottom) * scale + 1.0))
    ax = fig.add_subplot()
    ax.set_aspect('equal')
    ax.set_xlim(-radius - 0.3, xs[-1] + radius + 0.3)
    ax.set_ylim(-bottom, top)
    ax.axis('off')

    fills = ['0.88'] * 2 + ['#cfe3f7'] * num_blocks + ['#ffd8a8']
    for x, name, fill in zip(xs, names, fills):
        ax.add_patch(Circle((x, 0), radius, fc=fill, ec='0.2', lw=1.3,
                            zorder=3))
        ax.text(x, 0, name, ha='center', va='center', fontsize=10,
                fontweight='bold', zorder=4)

    colors = _op_colors(primitives)
    drawn = []
    for edge in ops:
        src, dst, op = edge
        path, mid = curve(edge, height(dst - src))
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle='-|>',
                                     mutation_scale=14, color=colors[op],
                                     lw=2.0, zorder=2))
        ax.text(mid[0], mid[1], op, ha='center', va='center', fontsize=8.5,
                color='0.1', zorder=5,
                bbox=dict(boxstyle='round,pad=0.22', fc='white',
                          ec=colors[op], lw=1.2))
        drawn.append((names[src], names[dst], op))
    for edge in cats:
        path, _ = curve(edge, -cat_depth(edge[1] - edge[0]))
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle='-|>',
                                     mutation_scale=11, color='0.45', lw=1.1,
                                     ls=(0, (4, 2)), zorder=1))
    ax.text(xs[-1] + radius, -bottom + 0.1,
            f'dashed: H(l) = concat(H1, ..., H{num_blocks})', ha='right',
            va='bottom', fontsize=9, style='italic', color='0.25')
    if path_note:
        ax.text(xs[0] - radius, -bottom + 0.1, path_note, ha='left',
                va='bottom', fontsize=9, color='0.25')
    fig.suptitle(title or 'Decoded cell', fontsize=12)
    _save(fig, out_path)
    return drawn


def infer_arch_start(history):
    """Epoch at which α/β updates started, from the entries' ``arch_active``.

    ``arch_active`` is true once the iteration passed the start, so the start
    lies between the last inactive entry and the first active one; the last
    inactive entry's epoch is returned (exact when validating every epoch),
    0 if the first entry is already active, None if none is active (or the
    field is missing).

    Returns:
        tuple: ``(epoch or None, exact)`` -- ``exact`` is false when the two
        bracketing entries are more than one epoch apart.
    """
    first = next((k for k, h in enumerate(history) if h.get('arch_active')),
                 None)
    if first is None:
        return None, True
    if first == 0:
        return 0, history[0]['epoch'] <= 1
    before, after = history[first - 1]['epoch'], history[first]['epoch']
    return before, after - before <= 1


def _series(history, key):
    values = []
    for h in history:
        v = h.get(key)
        values.append(math.nan if v is None else float(v))
    return np.asarray(values, dtype=float)


def plot_search_curves(history, out_path, arch_start_epoch=None, title=None):
    """Supernet mIoU and α/β entropy over the search, one panel each.

    A dashed vertical line marks where α/β updates start:
    ``arch_start_epoch`` if given, else :func:`infer_arch_start`.

    Returns:
        dict: ``epochs``, ``mIoU``, ``alpha_entropy``, ``beta_entropy``
        (lists, NaN where missing) and ``arch_start_epoch`` (or None).
    """
    check_history(history)
    epochs = np.asarray([float(h['epoch']) for h in history])
    miou = _series(history, 'mIoU')
    ent_a = _series(history, 'alpha_entropy')
    ent_b = _series(history, 'beta_entropy')
    exact = True
    if arch_start_epoch is None:
        arch_start_epoch, exact = infer_arch_start(history)

    fig = _figure((8.0, 7.0))
    ax_m, ax_e = fig.subplots(2, 1, sharex=True)
    has_miou = np.isfinite(miou)
    if has_miou.any():
        ax_m.plot(epochs[has_miou], miou[has_miou], marker='o', ms=5,
                  color='tab:purple', lw=1.8, label='supernet mIoU (val)')
        best = int(np.nanargmax(miou))
        ax_m.plot(epochs[best], miou[best], ls='', marker='*', ms=15,
                  color='gold', mec='0.2', zorder=3,
                  label=f'best {miou[best]:.2f} (epoch {epochs[best]:g})')
        ax_m.margins(y=0.15)
        ax_m.legend(fontsize=8.5, loc='best', framealpha=0.9)
    else:
        ax_m.text(0.5, 0.5, 'no mIoU recorded', transform=ax_m.transAxes,
                  ha='center', va='center', color='0.4')
    ax_m.set_ylabel('mIoU (%)')
    ax_m.set_title('Supernet validation mIoU', fontsize=10.5)

    ax_e.plot(epochs, ent_a, marker='o', ms=4.5, lw=1.8, color='tab:blue',
              label='α entropy (cell ops)')
    ax_e.plot(epochs, ent_b, marker='s', ms=4.5, lw=1.8, color='tab:green',
              label='β entropy (path moves)')
    uniform_a, uniform_b = _uniform_entropies(history)
    if uniform_a is not None:
        ax_e.axhline(uniform_a, color='tab:blue', ls=':', lw=1.2,
                     label='uniform α')
    if uniform_b is not None:
        ax_e.axhline(uniform_b, color='tab:green', ls=':', lw=1.2,
                     label='uniform β')
    ax_e.set_ylabel('mean entropy (nats)')
    ax_e.set_xlabel('epoch')
    ax_e.set_title('Architecture entropy (lower = more decided)',
                   fontsize=10.5)
    ax_e.set_ylim(bottom=0, top=max(
        [v for v in (uniform_a, uniform_b) if v is not None]
        + [float(np.nanmax(np.r_[ent_a, ent_b, 0.0]))]) * 1.08 + 1e-3)
    ax_e.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        ax_e.set_xlim(epochs[0] - 1, epochs[0] + 1)
    for ax in (ax_m, ax_e):
        ax.grid(color='0.92')
        ax.set_axisbelow(True)
        if arch_start_epoch is not None:
            ax.axvspan(min(epochs.min(), arch_start_epoch), arch_start_epoch,
                       color='0.5', alpha=0.1, lw=0)
            ax.axvline(arch_start_epoch, color='tab:red', ls='--', lw=1.4)
    handles, labels = ax_e.get_legend_handles_labels()
    if arch_start_epoch is not None:
        approx = '' if exact else '≈ '
        handles += [Line2D([], [], color='tab:red', ls='--', lw=1.4),
                    Patch(color='0.5', alpha=0.15)]
        labels += [f'α/β updates start ({approx}epoch {arch_start_epoch:g})',
                   'weights-only warm-up']
    else:
        handles.append(Line2D([], [], ls=''))
        labels.append('α/β updates not started yet')
    fig.legend(handles, labels, fontsize=8.5, loc='outside lower center',
               ncols=3, frameon=False)
    fig.suptitle(title or 'Architecture search progress', fontsize=12)
    _save(fig, out_path)
    return dict(epochs=epochs.tolist(), mIoU=miou.tolist(),
                alpha_entropy=ent_a.tolist(), beta_entropy=ent_b.tolist(),
                arch_start_epoch=arch_start_epoch)


def _uniform_entropies(history):
    """Entropy of uniform α and of uniform β (as averaged by the hook)."""
    alpha, beta = history[-1].get('alpha'), history[-1].get('beta')
    uniform_a = uniform_b = None
    try:
        num_ops = np.asarray(alpha, dtype=float).shape[1]
        uniform_a = math.log(num_ops)
    except (TypeError, ValueError, IndexError):
        pass
    try:
        levels = np.asarray(beta, dtype=float).shape[1]
        if levels >= 2:  # two moves at the finest/coarsest level, else 3
            uniform_b = (2 * math.log(2) + (levels - 2) * math.log(3)) / \
                levels
    except (TypeError, ValueError, IndexError):
        pass
    return uniform_a, uniform_b


def select_entry(history, index, source='search history'):
    """``history[index]`` (negative counts from the end), checked."""
    if isinstance(index, bool) or not isinstance(index, int) or \
            not -len(history) <= index < len(history):
        raise SearchHistoryError(
            f'{source}: entry {index} out of range (the history has '
            f'{len(history)} entries: 0..{len(history) - 1} or '
            f'-{len(history)}..-1)')
    k = index % len(history)
    check_entry(history[k], where=f'{source}: entry {k}')
    entry_choices(history[k], where=f'{source}: entry {k}')
    return history[k]


def plot_all(history, out_dir, entry=-1, arch_start_epoch=None,
             source='search history'):
    """Draw the four plots into ``out_dir``.

    Everything is checked before anything is written.

    Returns:
        dict[str, str]: plot kind (``alpha``, ``beta``, ``cell``,
        ``curves``) -> written path.
    """
    check_history(history, source)
    chosen = select_entry(history, entry, source)
    cell, path, _, _ = entry_choices(chosen)
    _, beta, genotype = check_entry(chosen)
    label = _entry_label(chosen)
    if genotype is None:
        genotype = cell
    out = {k: osp.join(os.fspath(out_dir), v) for k, v in PLOT_FILES.items()}
    plot_alpha_heatmap(chosen, out['alpha'])
    plot_beta_trellis(chosen, out['beta'])
    plot_cell(genotype, out['cell'],
              title='Decoded cell' + (f' ({label})' if label else ''))
    plot_search_curves(history, out['curves'],
                       arch_start_epoch=arch_start_epoch)
    return out


# ------------------------------------------------------------------- CLI ---
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot an Auto-DeepLab search from WORK_DIR/'
        f'{HISTORY_FILE}: α heatmap, β trellis, decoded cell, curves.')
    parser.add_argument('work_dir', help='work_dir of tools/search.py')
    parser.add_argument('--out', help='output folder (default: '
                        'WORK_DIR/plots)')
    parser.add_argument('--entry', type=int, default=-1,
                        help='history entry to draw α/β/cell for (Python '
                        'index; default -1, the last)')
    parser.add_argument('--arch-start-epoch', type=float, default=None,
                        help='epoch where α/β updates started (default: '
                        'inferred from the entries\' arch_active)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if not osp.isdir(args.work_dir):
            raise SearchHistoryError(
                f'{args.work_dir}: work_dir not found (or not a folder)')
        source = osp.join(args.work_dir, HISTORY_FILE)
        history = load_history(source)
        select_entry(history, args.entry, source)
        out_dir = args.out or osp.join(args.work_dir, 'plots')
        if osp.exists(out_dir) and not osp.isdir(out_dir):
            raise SearchHistoryError(f'{out_dir}: --out exists and is not a '
                                     'folder')
    except SearchHistoryError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    try:
        written = plot_all(history, out_dir, args.entry,
                           args.arch_start_epoch, source)
    except OSError as e:  # e.g. an unwritable --out
        print(f'error: {out_dir}: cannot write the plots ({e})',
              file=sys.stderr)
        return 2
    k = args.entry % len(history)
    print(f'Plotted entry {k} (epoch {history[k]["epoch"]:g}) of '
          f'{len(history)} from {source}:')
    for path in written.values():
        print(f'  {path}')
    return 0
