"""The static Auto-DeepLab network built from a genotype (retraining).

TF's ``nas_network.py`` / ``nas_cell.py`` (backbone ``hnasnet``) for any
valid genotype. Shapes (input ``(N, 3, H, W)``): the stem (3×3 convs,
64/64/128 channels, strides 2/1/2) outputs level 0 (``/4``, ``h_0 =
ceil(ceil(H / 2) / 2)``); level ``j`` has the CANONICAL size ``h_{j+1} =
ceil(h_j / 2)``; a cell there outputs ``B * F * 2**j`` channels.

Cell ``l`` sees ``H(l-1)`` and ``H(l-2)`` (for cell 0 the stem's /2 second
conv, as TF). Going coarser, the ops on the cell's inputs use stride 2;
going finer, ``H(l-1)`` is first bilinearly upsampled
(``align_corners=True``) to the canonical size. ``H(l-2)`` is resized to
``H(l-1)``'s size and 1×1-projected only where they differ (TF
``_cell_base``). TF upsamples ``d`` to ``(d - 1) * 2 + 1``: the canonical
size for TF's odd sizes (769 -> 385 -> ... -> 25), elsewhere 64 -> 127
where this keeps 128. TF's strided atrous op (resize to ``(d - 1) / 2 + 1``,
rate-1 conv) is for odd ``d`` the OPS table's stride-2 dilation-2 conv.
"""
import os
import os.path as osp

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...search_space import Genotype, GenotypeError, build_op, level_sizes
from ...search_space.primitives import ReLUConvBN, build_norm
from ...utils.checks import is_integer
from ...utils.configs import find_project_file


def _plain(data):
    """ConfigDict/tuple -> plain dict/list, as the JSON would give."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    return data


def load_genotype(genotype):
    """A validated :class:`Genotype` from a path (relative: tried as
    :func:`~mmseg_autodeeplab.utils.configs.find_project_file` does), a JSON
    dict or a Genotype. No default architecture: anything invalid raises
    :class:`GenotypeError` naming the file (or ``'inline genotype'``)."""
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, (str, os.PathLike)):
        found, candidates = find_project_file(genotype)
        if found:
            return Genotype.load(found)
        where = '' if len(candidates) == 1 else ' (looked in: ' + ', '.join(
            dict.fromkeys(osp.dirname(c) or '.' for c in candidates)) + ')'
        raise GenotypeError(f'{genotype}: genotype file not found{where}')
    if isinstance(genotype, dict):
        return Genotype.from_dict(_plain(genotype), source='inline genotype')
    raise GenotypeError(
        'genotype: expected a path to a genotype JSON file, its content as a '
        f'dict, or a Genotype; got {type(genotype).__name__}')


def drop_path(x, drop_prob, training):
    """Zero whole samples of ``x`` ``(N, C, h, w)`` with probability
    ``drop_prob``; rescale the rest."""
    if not training or drop_prob <= 0.:
        return x
    keep = 1. - drop_prob
    mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)
    return x * mask / keep


class CellLayers:
    """Where a network's layers come from: built anew (the static network).

    :class:`AutoDeepLabNet` asks ``stem(...)`` once and ``cell(layer, level,
    prev, prev_prev)`` per cell (``prev``/``prev_prev``: the source of
    ``H(l-1)``/``H(l-2)``, ``'stem1'`` the stem's ``/2`` conv, ``'stem'`` its
    output, else the level as a string); the cell then asks the returned
    object for its ``preprocess`` and ``op`` layers. The one-shot network
    (:class:`AutoDeepLabOneShot`) answers with shared layers instead.
    """

    def __init__(self, norm_cfg):
        self.norm_cfg = norm_cfg

    def stem(self, in_channels, stem_channels):
        return AutoDeepLabStem(in_channels, stem_channels, self.norm_cfg)

    def cell(self, layer, level, prev, prev_prev):
        return self

    def preprocess(self, which, in_channels, channels):
        """The 1×1 projection of input ``which`` (0: ``H(l-2)``, 1:
        ``H(l-1)``); TF projects ``H(l-2)`` only when its width differs."""
        if which == 0 and in_channels == channels:
            return nn.Identity()
        return ReLUConvBN(in_channels, channels, 1, norm_cfg=self.norm_cfg)

    def op(self, block, branch, index, name, channels, stride):
        """Operator ``name`` of branch ``branch`` (0 or 1) of block
        ``block``, on input ``index``."""
        return build_op(name, channels, stride, self.norm_cfg)


class AutoDeepLabCell(nn.Module):
    """One cell of the static network: ``blocks`` as in
    :class:`CellGenotype`, ``channels`` per block (``F * 2**level``),
    ``stride`` 2 when it is one level coarser than ``H(l-1)``; ``layers``
    (a :class:`CellLayers`) supplies its layers."""

    def __init__(self, blocks, channels, prev_channels, prev_prev_channels,
                 stride, norm_cfg=None, layers=None):
        super().__init__()
        layers = layers or CellLayers(norm_cfg)
        self.channels = channels
        self.stride = stride
        self.preprocess1 = layers.preprocess(1, prev_channels, channels)
        self.preprocess0 = layers.preprocess(0, prev_prev_channels, channels)
        self.inputs = []
        self.droppable = []
        self.ops = nn.ModuleList()
        for b, block in enumerate(blocks):
            for branch, (index, op) in enumerate(block):
                s = stride if index < 2 else 1
                self.ops.append(layers.op(b, branch, index, op, channels, s))
                self.inputs.append(index)
                # as TF: drop path never drops a skip connection
                self.droppable.append(op != 'skip_connect')
        self.num_blocks = len(blocks)

    @property
    def out_channels(self):
        return self.num_blocks * self.channels

    def forward(self, prev_prev, prev, drop_prob=0.):
        """``prev`` is at the cell's input size (upsampled already if the
        cell is finer); returns ``(N, B*C, h', w')``, ``h' = ceil(h/stride)``.
        """
        if prev_prev.shape[2:] != prev.shape[2:]:
            prev_prev = F.interpolate(prev_prev, size=prev.shape[2:],
                                      mode='bilinear', align_corners=True)
        states = [self.preprocess0(prev_prev), self.preprocess1(prev)]
        for b in range(self.num_blocks):
            out = 0
            for k in (2 * b, 2 * b + 1):
                y = self.ops[k](states[self.inputs[k]])
                if self.droppable[k]:
                    y = drop_path(y, drop_prob, self.training)
                out = out + y
            states.append(out)
        return torch.cat(states[2:], dim=1)


class AutoDeepLabStem(nn.Module):
    """Three 3×3 convs (strides 2/1/2) as in TF's ``_nas_stem``.

    Returns ``(out, conv1)``: the ``/4`` output (conv2-BN, no ReLU: every
    consumer starts with one) and the ``/2`` conv1-BN output, the first
    cell's ``H(l-2)`` in TF.
    """

    def __init__(self, in_channels, stem_channels, norm_cfg):
        super().__init__()
        c0, c1, c2 = stem_channels
        self.conv0 = nn.Conv2d(in_channels, c0, 3, 2, 1, bias=False)
        self.bn0 = build_norm(norm_cfg, c0)
        self.conv1 = nn.Conv2d(c0, c1, 3, 1, 1, bias=False)
        self.bn1 = build_norm(norm_cfg, c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, 2, 1, bias=False)
        self.bn2 = build_norm(norm_cfg, c2)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        conv1 = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(F.relu(conv1)))
        return out, conv1


@MODELS.register_module()
class AutoDeepLabNet(BaseModule):
    """Auto-DeepLab network from a genotype, for retraining (DeepLabv3+).

    Args:
        genotype (str | dict | Genotype): a genotype JSON file, its content
            as a dict, or a :class:`Genotype` (see :func:`load_genotype`).
        filter_multiplier (int): F (20/32/48 for Auto-DeepLab-S/M/L).
        num_blocks (int, optional): B, a config guard: must equal the
            genotype's.
        in_channels (int): image channels.
        stem_channels (Sequence[int]): widths of the three stem convs.
        norm_cfg (dict): every norm layer.
        out_indices (Sequence[int]): cells whose outputs are returned;
            default Cell_2 (the decoder's low-level feature) and the last.
        drop_path_prob (float): scheduled drop path, as TF: cell ``l``
            drops a branch with ``drop_path_prob * (l + 1) / L * progress``;
            ``progress`` (``iter / max_iters``, 1 until set) is set by
            :class:`DropPathScheduleHook`.
        with_cp (bool): exact gradient checkpointing per cell.
        layers (CellLayers, optional): where the stem and the cells' layers
            come from; default new ones (the one-shot passes its shared
            layers).
        init_cfg (dict, optional): mmengine init config (PyTorch's default
            conv init already equals TF's NAS initialiser).

    Returns (forward):
        tuple[Tensor]: the ``out_indices`` cells' outputs; the last cell's
        after a ReLU, as TF.

    Example:
        >>> net = AutoDeepLabNet('configs/genotypes/autodeeplab_paper.json',
        ...                      filter_multiplier=4)
        >>> net.out_channels
        [20, 40]
        >>> [tuple(o.shape) for o in net(torch.rand(1, 3, 97, 97))]
        [(1, 20, 25, 25), (1, 40, 13, 13)]
    """

    def __init__(self,
                 genotype,
                 filter_multiplier=20,
                 num_blocks=None,
                 in_channels=3,
                 stem_channels=(64, 64, 128),
                 norm_cfg=dict(type='BN', requires_grad=True),
                 out_indices=(2, -1),
                 drop_path_prob=0.0,
                 with_cp=False,
                 layers=None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        layers = layers or CellLayers(norm_cfg)
        self.genotype = load_genotype(genotype)
        cell_blocks, path = self.genotype.cell.blocks, self.genotype.path
        num_layers = len(path)
        if num_blocks is not None and num_blocks != len(cell_blocks):
            raise GenotypeError(
                f'AutoDeepLabNet: num_blocks={num_blocks} but the genotype '
                f'has {len(cell_blocks)} blocks')
        for bad, message in (
                (not is_integer(filter_multiplier, 1),
                 'filter_multiplier must be a positive integer, got '
                 f'{filter_multiplier!r}'),
                (len(stem_channels) != 3,
                 f'stem_channels needs 3 widths, got {stem_channels!r}'),
                (not 0. <= drop_path_prob < 1.,
                 f'drop_path_prob must be in [0, 1), got {drop_path_prob!r}'),
                (not all(-num_layers <= i < num_layers for i in out_indices),
                 f'out_indices {tuple(out_indices)} out of range for a '
                 f'{num_layers}-cell genotype')):
            if bad:
                raise ValueError(f'AutoDeepLabNet: {message}')
        self.out_indices = tuple(i % num_layers for i in out_indices)
        self.filter_multiplier = filter_multiplier
        self.num_blocks, self.num_layers = len(cell_blocks), num_layers
        self.num_levels = self.genotype.search_space.num_levels
        self.path, self.with_cp = path, with_cp
        self.drop_path_prob = float(drop_path_prob)
        self.drop_path_progress = 1.  # set by DropPathScheduleHook

        self.stem = layers.stem(in_channels, stem_channels)
        self.cells = nn.ModuleList()
        self.upsample = []
        # H(l-2), H(l-1) of cell 0: TF's stem conv1 (/2) and stem output
        pp_ch, p_ch, p_level = stem_channels[1], stem_channels[2], 0
        sources = ['stem1', 'stem'] + [str(level) for level in path]
        for layer, level in enumerate(path):
            channels = filter_multiplier * 2**level
            self.cells.append(AutoDeepLabCell(
                cell_blocks, channels, p_ch, pp_ch,
                stride=2 if level > p_level else 1,
                layers=layers.cell(layer, level, sources[layer + 1],
                                   sources[layer])))
            self.upsample.append(level < p_level)
            pp_ch, p_ch, p_level = p_ch, self.cells[-1].out_channels, level
        self.out_channels = [self.cells[i].out_channels
                             for i in self.out_indices]
        self.out_strides = [self.genotype.search_space.strides[path[i]]
                            for i in self.out_indices]

    def set_drop_path_progress(self, progress):
        """Training progress in [0, 1] for scheduled drop path."""
        self.drop_path_progress = min(max(float(progress), 0.), 1.)

    def cell_drop_prob(self, cell_num):
        """Drop probability of cell ``cell_num`` now (0 in eval)."""
        if not self.training or self.drop_path_prob <= 0.:
            return 0.
        depth = (cell_num + 1) / self.num_layers
        return self.drop_path_prob * depth * self.drop_path_progress

    def _run_cell(self, cell, prev_prev, prev, drop_prob):
        if self.with_cp and self.training and prev.requires_grad:
            from torch.utils.checkpoint import checkpoint
            return checkpoint(cell, prev_prev, prev, drop_prob,
                              use_reentrant=False)
        return cell(prev_prev, prev, drop_prob)

    def forward(self, x):
        prev, prev_prev = self.stem(x)
        sizes = level_sizes(prev.shape[2], prev.shape[3], self.num_levels)
        outs = {}
        for cell_num, (cell, level) in enumerate(zip(self.cells, self.path)):
            inp = prev
            if self.upsample[cell_num]:
                inp = F.interpolate(prev, size=sizes[level], mode='bilinear',
                                    align_corners=True)
            out = self._run_cell(cell, prev_prev, inp,
                                 self.cell_drop_prob(cell_num))
            if cell_num == self.num_layers - 1:
                out = F.relu(out)  # TF: ReLU after the last cell
            if cell_num in self.out_indices:
                outs[cell_num] = out
            prev_prev, prev = prev, out
            if cell_num >= max(self.out_indices):
                break  # later cells feed no requested output
        return tuple(outs[i] for i in self.out_indices)
