"""``python tools/plot_search.py WORK_DIR [--out DIR] [--entry -1]
[--arch-start-epoch E]``: plots of an Auto-DeepLab search.

Drawn from ``WORK_DIR/search_history.json``, which
:class:`~mmseg_autodeeplab.engine.GenotypeHook` rewrites at every
validation: ``epoch``, ``mIoU``, ``alpha_entropy``, ``beta_entropy``,
``alpha`` (softmaxed, ``(E, P)``), ``beta`` (normalised, ``(L, levels,
3)``), the decoded ``genotype``, ``arch_start_epoch`` and, in a budgeted
search, ``cost`` (so a running search can be plotted at any time, any
validation with ``--entry``). Writes into DIR (default WORK_DIR/plots)
alpha_heatmap.png, beta_trellis.png, cell.png and search_curves.png, each
atomically; the plots decode nothing. Bad input: one line on stderr, exit
code 2, no files.
"""
import argparse
import io
import json
import math
import os
import os.path as osp
import sys

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, Patch, Rectangle
from matplotlib.ticker import MaxNLocator

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_autodeeplab.search_space import (  # noqa: E402
    ZERO_OP, Genotype, GenotypeError, input_names, max_level, normalize_betas,
    num_edges)
from mmseg_autodeeplab.search_space.decode import arch_entropies  # noqa
from mmseg_autodeeplab.utils.atomic import atomic_write_bytes  # noqa: E402

HISTORY_FILE = 'search_history.json'
PLOT_FILES = dict(alpha='alpha_heatmap.png', beta='beta_trellis.png',
                  cell='cell.png', curves='search_curves.png')
PATH_COLOR = '#e8590c'
CHOICE_COLOR = '#ff2d55'
DPI = 130


class SearchHistoryError(ValueError):
    """The search history (file or entry) is unusable; one-line message."""


# --------------------------------------------------------------- reading ---
def _ndim(value):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):  # ragged or not numbers
        return None
    return arr.ndim if arr.size else None


#: what a drawn entry must hold: (field, test, what the test wants)
_FIELDS = (
    ('epoch', lambda v: isinstance(v, (int, float))
     and not isinstance(v, bool) and v >= 0, 'a non-negative number'),
    ('alpha', lambda v: _ndim(v) == 2, 'a non-empty 2-D array'),
    ('beta', lambda v: _ndim(v) == 3, 'a non-empty 3-D array'),
    ('genotype', lambda v: isinstance(v, dict), 'an object'),
)


def read_entry(entry, where='entry'):
    """``(alpha, beta, genotype)`` of one history entry;
    :class:`SearchHistoryError` names ``where`` and the bad field."""
    if not isinstance(entry, dict):
        raise SearchHistoryError(
            f'{where}: expected an object, got {type(entry).__name__}')
    for key, ok, what in _FIELDS:
        if key not in entry:
            raise SearchHistoryError(f'{where}: missing field "{key}"')
        if not ok(entry[key]):
            raise SearchHistoryError(f'{where}: "{key}" must be {what}, got '
                                     f'{entry[key]!r:.60}')
    try:
        genotype = Genotype.from_dict(entry['genotype'],
                                      source=f'{where}: genotype')
    except GenotypeError as e:
        raise SearchHistoryError(str(e)) from None
    return np.asarray(entry['alpha'], float), np.asarray(entry['beta'],
                                                         float), genotype


def load_history(path):
    """The entries (oldest first, never empty) of ``search_history.json``
    (a file or its work_dir), checked; :class:`SearchHistoryError` names
    the file and the problem."""
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
    if not isinstance(history, list):
        raise SearchHistoryError(f'{path}: expected a JSON list of entries, '
                                 f'got {type(history).__name__}')
    if not history:
        raise SearchHistoryError(f'{path}: the history is empty (no '
                                 'validation interval has finished yet)')
    for k, entry in enumerate(history):
        read_entry(entry, f'{path}: entry {k}')
    return history


def infer_arch_start(history):
    """``(epoch or None, exact)``: where α/β updates start.

    GenotypeHook records ``arch_start_epoch``; in older histories (only
    ``arch_active`` per entry) it is the last entry without updates, exact
    when the next entry is at most one epoch later.
    """
    if history and history[-1].get('arch_start_epoch') is not None:
        return history[-1]['arch_start_epoch'], True
    first = next((k for k, h in enumerate(history) if h.get('arch_active')),
                 None)
    if first is None:
        return None, True
    before = history[first - 1]['epoch'] if first else 0
    return before, history[first]['epoch'] - before <= 1


# --------------------------------------------------------------- drawing ---
def _figure(figsize):
    fig = Figure(figsize=figsize, layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out_path, title, fontsize=12):
    """The figure as a PNG file, written atomically."""
    fig.suptitle(title, fontsize=fontsize)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=DPI, facecolor='white')
    atomic_write_bytes(out_path, buffer.getvalue())


def _label(entry):
    return f'epoch {entry["epoch"]:g}' + (
        f', iter {entry["iter"]:g}' if 'iter' in entry else '')


def plot_alpha_heatmap(entry, out_path, title=None):
    """Heatmap of an entry's softmaxed α (rows: edges ``"H2 ← H(l-1)"``,
    columns: operators); returns the outlined ``(edge_row, op)`` cells of
    its genotype, by row."""
    alpha, _, genotype = read_entry(entry)
    primitives = genotype.search_space.primitives
    blocks = genotype.cell.blocks
    rows, cols = alpha.shape
    chosen = sorted((num_edges(b) + i, op)
                    for b, block in enumerate(blocks) for i, op in block)
    fig = _figure((1.05 * cols + 3.2, 0.42 * rows + 2.0))
    ax = fig.add_subplot()
    # the data's colour range: an early, near-uniform α still shows which
    # weights lead (the colour bar gives the scale)
    low, high = float(alpha.min()), float(alpha.max())
    norm = Normalize(low, max(high, low + 1e-9))
    fmt = '.3f' if high - low < 0.05 else '.2f'
    image = ax.imshow(alpha, cmap='viridis', norm=norm, aspect='auto',
                      interpolation='nearest')
    for (r, c), value in np.ndenumerate(alpha):
        red, green, blue = image.cmap(norm(value))[:3]
        dark = 0.299 * red + 0.587 * green + 0.114 * blue <= 0.5
        ax.text(c, r, format(value, fmt), ha='center', va='center',
                fontsize=8.5, color='white' if dark else 'black')
    for b in range(1, len(blocks)):
        ax.axhline(num_edges(b) - 0.5, color='white', lw=2.5)
    for row, op in chosen:
        ax.add_patch(Rectangle((primitives.index(op) - 0.5, row - 0.5), 1, 1,
                               fill=False, ec=CHOICE_COLOR, lw=2.8, zorder=3))
    ax.set_xticks(range(cols), [f'{p}\n(never chosen)' if p == ZERO_OP
                                else p for p in primitives],
                  rotation=35, ha='right', rotation_mode='anchor')
    ax.set_yticks(range(rows), [f'H{b + 1} ← {name}'
                                for b in range(len(blocks))
                                for name in input_names(b)])
    ax.tick_params(length=0)
    ax.set(xlabel='operator', ylabel='edge (block ← input)')
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02).set_label(
        'softmax(α) over operators')
    ax.legend(handles=[Patch(fill=False, ec=CHOICE_COLOR, lw=2.5,
                             label='decoded choice')], loc='lower center',
              bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=9)
    _save(fig, out_path, title or f'Cell weights α ({_label(entry)})')
    return chosen


def plot_beta_trellis(entry, out_path, title=None, annotate=None):
    """Trellis of an entry's β (layer x level): every move a segment whose
    width and shade grow with its probability, the genotype's path (the
    returned levels) a thick line. ``annotate`` writes every move's
    probability (default for L <= 6), else only the path's."""
    _, beta, genotype = read_entry(entry)
    path, strides = list(genotype.path), genotype.search_space.strides
    num_layers, num_levels, _ = beta.shape
    if annotate is None:
        annotate = num_layers <= 6
    levels = [0] + path  # the stem first
    moves = [(layer, src, dst, float(beta[layer, src, dst - src + 1]))
             for layer in range(num_layers)
             for src in range(max_level(layer - 1, num_levels) + 1)
             for dst in (src - 1, src, src + 1)
             if 0 <= dst <= max_level(layer, num_levels)]
    fig = _figure((max(6.5, 0.82 * (num_layers + 1) + 2.8),
                   1.05 * num_levels + 2.3))
    ax = fig.add_subplot()
    cmap = LinearSegmentedColormap.from_list(
        'blues', colormaps['Blues'](np.linspace(0.3, 1.0, 256)))
    ax.add_collection(LineCollection(
        [[(layer, src), (layer + 1, dst)] for layer, src, dst, _ in moves],
        linewidths=[0.4 + 5.0 * p for *_, p in moves],
        colors=[(*cmap(p)[:3], 0.25 + 0.75 * p) for *_, p in moves],
        capstyle='round', zorder=1))
    ax.plot(range(num_layers + 1), levels, color=PATH_COLOR, lw=4.5,
            alpha=0.9, solid_capstyle='round', zorder=2)
    # near-uniform β (early in the search): 3 decimals show what decides
    uniform = max(abs(p - 1 / (2 if src in (0, num_levels - 1) else 3))
                  for _, src, _, p in moves) < 0.05
    for layer, src, dst, p in moves:
        if annotate or (levels[layer], levels[layer + 1]) == (src, dst):
            # off the midpoint, where crossing moves intersect; along it
            ax.text(layer + 0.32, src + 0.32 * (dst - src),
                    format(p, '.3f' if uniform else '.2f'), fontsize=7.5,
                    ha='center', va='center', zorder=4,
                    rotation=math.degrees(math.atan2(dst - src, 1)),
                    transform_rotates_text=True, rotation_mode='anchor',
                    bbox=dict(boxstyle='round,pad=0.12', fc='white',
                              ec='none', alpha=0.85))
    nodes = [(0, 0)] + [(layer + 1, level) for layer in range(num_layers)
                        for level in range(max_level(layer, num_levels) + 1)]
    ax.scatter(*zip(*nodes), s=70, facecolor='white', edgecolor='0.25',
               lw=1.2, zorder=3)
    ax.scatter(range(num_layers + 1), levels, s=85, facecolor=PATH_COLOR,
               edgecolor='0.15', lw=1.2, zorder=5)
    ax.set(xlim=(-0.5, num_layers + 0.5),
           ylim=(num_levels - 0.5, -0.5),  # the finest level at the top
           xticks=range(num_layers + 1),
           xticklabels=['stem'] + [str(k) for k in range(1, num_layers + 1)],
           yticks=range(num_levels), yticklabels=[f'1/{s}' for s in strides],
           xlabel='layer', ylabel='spatial resolution (downsample rate)')
    ax.spines[['top', 'right']].set_visible(False)
    ax.grid(axis='y', color='0.93')
    ax.set_axisbelow(True)
    fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, fraction=0.04,
                 pad=0.02).set_label('transition probability β')
    fig.legend(handles=[
        Line2D([], [], color=PATH_COLOR, lw=4.5, marker='o', mec='0.15',
               label='decoded path'),
        Line2D([], [], color=cmap(0.8), lw=3, label='move (width ∝ β)'),
        Line2D([], [], ls='', marker='o', mfc='white', mec='0.25', ms=8,
               label='reachable (layer, level)')],
        loc='outside lower center', ncols=3, frameon=False, fontsize=9)
    _save(fig, out_path, title or (
        f'Network-level transitions β ({_label(entry)})\ndecoded path '
        'strides: ' + ' '.join(map(str, genotype.path_strides))), 11.5)
    return path


def plot_cell(genotype, out_path, title=None):
    """A genotype's (or its JSON dict's) cell as an arc diagram.

    Nodes left to right: ``H(l-2)``, ``H(l-1)``, ``H1..HB``, ``H(l)``; each
    branch an arc above labelled with its operator, the concatenation into
    ``H(l)`` dashed arcs below. Returns ``(input, block, op)`` in block
    order.
    """
    if isinstance(genotype, dict):
        genotype = Genotype.from_dict(genotype)
    num_blocks = len(genotype.cell.blocks)
    names = input_names(num_blocks) + ['H(l)']
    last, dx, radius = len(names) - 1, 3.0, 0.62
    ops = [(i, b + 2, op) for b, block in enumerate(genotype.cell.blocks)
           for i, op in block]
    top = 1.0 + 0.7 * (max(d - s for s, d, _ in ops) - 1) + 0.55
    bottom = 0.75 + 0.3 * (num_blocks - 1) + 1.0
    fig = _figure((last * dx * 0.58 + 1.5, (top + bottom) * 0.58 + 1.0))
    ax = fig.add_subplot(aspect='equal', xlim=(
        -radius - 0.3, last * dx + radius + 0.3), ylim=(-bottom, top))
    ax.axis('off')
    circles = []
    for k, name in enumerate(names):
        fill = '0.88' if k < 2 else '#ffd8a8' if k == last else '#cfe3f7'
        circles.append(ax.add_patch(Circle((k * dx, 0), radius, fc=fill,
                                           ec='0.2', lw=1.3, zorder=3)))
        ax.text(k * dx, 0, name, ha='center', va='center', fontsize=10,
                fontweight='bold', zorder=4)

    def arc(src, dst, height, **kw):
        # arc3 bends by rad * distance; its midpoint sits at rad / 2 of it,
        # so this rad puts the arc's top at ``height`` (equal aspect)
        rad = -2 * height / ((dst - src) * dx)
        ax.add_patch(FancyArrowPatch(
            (src * dx, 0), (dst * dx, 0), patchA=circles[src],
            patchB=circles[dst], connectionstyle=f'arc3,rad={rad}',
            arrowstyle='-|>', **kw))

    colors = {p: colormaps['tab10'](k % 10) for k, p in
              enumerate(genotype.search_space.primitives)}
    for src, dst, op in ops:
        height = 1.0 + 0.7 * (dst - src - 1)
        arc(src, dst, height, mutation_scale=14, color=colors[op], lw=2.0,
            zorder=2)
        ax.text((src + dst) * dx / 2, height, op, ha='center', va='center',
                fontsize=8.5, color='0.1', zorder=5,
                bbox=dict(boxstyle='round,pad=0.22', fc='white',
                          ec=colors[op], lw=1.2))
    for src in range(2, last):
        arc(src, last, -(0.75 + 0.3 * (last - src - 1)), mutation_scale=11,
            color='0.45', lw=1.1, ls=(0, (4, 2)), zorder=1)
    note = dict(va='bottom', fontsize=9, color='0.25')
    ax.text(last * dx + radius, -bottom + 0.1,
            f'dashed: H(l) = concat(H1, ..., H{num_blocks})', ha='right',
            style='italic', **note)
    ax.text(-radius, -bottom + 0.1, 'path (strides): ' + ' '.join(
        map(str, genotype.path_strides)), ha='left', **note)
    _save(fig, out_path, title or 'Decoded cell')
    return [(names[s], names[d], op) for s, d, op in ops]


def _series(history, key, field=None):
    values = [h.get(key) for h in history]
    if field is not None:
        values = [v.get(field) if isinstance(v, dict) else None
                  for v in values]
    return np.array([math.nan if v is None else v for v in values], float)


def plot_search_curves(history, out_path, arch_start_epoch=None, title=None):
    """Supernet mIoU, α/β entropy and (budgeted search) predicted cost.

    The dashed line is where α/β updates start (``arch_start_epoch``, else
    :func:`infer_arch_start`); the cost panel (entries with ``cost``) shows
    the target too. Returns the series (``epochs``, ``mIoU``,
    ``alpha_entropy``, ``beta_entropy``, ``predicted_cost``; NaN where
    missing), ``cost_target`` and ``arch_start_epoch`` (or None).
    """
    epochs, miou, ent_a, ent_b = (_series(history, k) for k in (
        'epoch', 'mIoU', 'alpha_entropy', 'beta_entropy'))
    cost = _series(history, 'cost', 'predicted')
    budget = next((h['cost'] for h in reversed(history)
                   if isinstance(h.get('cost'), dict)), None)
    exact = True
    if arch_start_epoch is None:
        arch_start_epoch, exact = infer_arch_start(history)
    started = arch_start_epoch is not None and \
        arch_start_epoch <= epochs.max()
    # per panel: y label, title, lines (values, marker, colour, label)
    panels = [
        ('mIoU (%)', 'Supernet validation mIoU',
         [(miou, 'o', 'tab:purple', 'supernet mIoU (val)')]),
        ('mean entropy (nats)', 'Architecture entropy (lower = more decided)',
         [(ent_a, 'o', 'tab:blue', 'α entropy (cell ops)'),
          (ent_b, 's', 'tab:green', 'β entropy (path moves)')])]
    if budget:
        panels.append((f'predicted {budget.get("kind", "cost")}',
                       'Predicted cost of the decoded genotype',
                       [(cost, 'D', 'tab:orange', 'decoded genotype')]))
    fig = _figure((8.0, 9.5 if budget else 7.0))
    axes = fig.subplots(len(panels), 1, sharex=True)
    for ax, (ylabel, name, lines) in zip(axes, panels):
        for values, marker, color, label in lines:
            known = np.isfinite(values)  # one line through missing values
            ax.plot(epochs[known], values[known], marker=marker, ms=4.5,
                    lw=1.8, color=color, label=label)
        ax.set(ylabel=ylabel, title=name)
    ax_m, ax_e = axes[:2]
    if np.isfinite(miou).any():
        best = int(np.nanargmax(miou))
        ax_m.plot(epochs[best], miou[best], ls='', marker='*', ms=15,
                  color='gold', mec='0.2', zorder=3,
                  label=f'best {miou[best]:.2f} (epoch {epochs[best]:g})')
    ax_m.margins(y=0.15)
    # the hook's own measure of uniform α/β: where the entropies start
    space = read_entry(history[-1], 'last entry')[2].search_space
    uniform = arch_entropies(
        torch.full((1, len(space.primitives)), 1 / len(space.primitives)),
        normalize_betas(torch.zeros(space.num_layers, space.num_levels, 3)))
    for value, color, name in zip(uniform, ('tab:blue', 'tab:green'), 'αβ'):
        ax_e.axhline(value, color=color, ls=':', lw=1.2,
                     label=f'uniform {name}')
    ax_e.set_ylim(0, 1.08 * max(*uniform, np.nanmax(np.r_[ent_a, ent_b,
                                                          0.0])) + 1e-3)
    if budget:
        axes[2].axhline(budget['target'], color='0.3', ls='--', lw=1.2,
                        label=f'target {budget["target"]:.4g}')
    for ax in axes:
        ax.grid(color='0.92')
        ax.set_axisbelow(True)
        if started:
            ax.axvspan(min(epochs.min(), arch_start_epoch), arch_start_epoch,
                       color='0.5', alpha=0.1, lw=0,
                       label='weights-only warm-up')
            ax.axvline(arch_start_epoch, color='tab:red', ls='--', lw=1.4,
                       label=f'α/β updates start ({"" if exact else "≈ "}'
                       f'epoch {arch_start_epoch:g})')
        if ax is not ax_e:  # the shared lines go in the figure's legend
            ax.legend(*[x[:-2 if started else None]
                        for x in ax.get_legend_handles_labels()],
                      fontsize=8.5, framealpha=0.9)
    if not started:
        ax_e.plot([], [], ls='', label='α/β updates not started yet' + (
            '' if arch_start_epoch is None else
            f' (from epoch {arch_start_epoch:g})'))
    axes[-1].set_xlabel('epoch')
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        axes[-1].set_xlim(epochs[0] - 1, epochs[0] + 1)
    fig.legend(*ax_e.get_legend_handles_labels(), fontsize=8.5, ncols=3,
               loc='outside lower center', frameon=False)
    _save(fig, out_path, title or 'Architecture search progress')
    return dict(epochs=epochs.tolist(), mIoU=miou.tolist(),
                alpha_entropy=ent_a.tolist(), beta_entropy=ent_b.tolist(),
                predicted_cost=cost.tolist(),
                cost_target=budget['target'] if budget else None,
                arch_start_epoch=arch_start_epoch)


def plot_all(history, out_dir, entry=-1, arch_start_epoch=None):
    """Draw the four plots of ``history[entry]`` into ``out_dir``; returns
    plot kind (:data:`PLOT_FILES` keys) -> written path."""
    chosen = history[entry]
    out = {k: osp.join(os.fspath(out_dir), v) for k, v in PLOT_FILES.items()}
    plot_alpha_heatmap(chosen, out['alpha'])
    plot_beta_trellis(chosen, out['beta'])
    plot_cell(chosen['genotype'], out['cell'],
              title=f'Decoded cell ({_label(chosen)})')
    plot_search_curves(history, out['curves'],
                       arch_start_epoch=arch_start_epoch)
    return out


# ------------------------------------------------------------------- CLI ---
def main(argv=None):
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
                        'as recorded in the history)')
    args = parser.parse_args(argv)
    source = osp.join(args.work_dir, HISTORY_FILE)
    out_dir = args.out or osp.join(args.work_dir, 'plots')
    try:
        if not osp.isdir(args.work_dir):
            raise SearchHistoryError(
                f'{args.work_dir}: work_dir not found (or not a folder)')
        history = load_history(source)
        n = len(history)
        if not -n <= args.entry < n:
            raise SearchHistoryError(
                f'{source}: entry {args.entry} out of range (the history has '
                f'{n} entries: 0..{n - 1} or -{n}..-1)')
        if osp.exists(out_dir) and not osp.isdir(out_dir):
            raise SearchHistoryError(f'{out_dir}: --out exists and is not a '
                                     'folder')
        try:
            written = plot_all(history, out_dir, args.entry,
                               args.arch_start_epoch)
        except OSError as e:  # e.g. an unwritable --out
            raise SearchHistoryError(
                f'{out_dir}: cannot write the plots ({e})') from None
    except SearchHistoryError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    k = args.entry % n
    print(f'Plotted entry {k} (epoch {history[k]["epoch"]:g}) of {n} from '
          f'{source}:')
    for path in written.values():
        print(f'  {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
