"""The static Auto-DeepLab network built from a genotype (retraining).

Follows the official TensorFlow network (``research/deeplab/core/
nas_network.py`` / ``nas_cell.py``, backbone ``hnasnet``), generalised to any
valid genotype.

Shape vocabulary (input ``(N, 3, H, W)``):

* stem: three 3×3 convs, 64/64/128 channels, strides 2/1/2; its output is at
  level 0 (``/4``), size ``h_0 = ceil(ceil(H / 2) / 2)``;
* level ``j`` (downsample rate ``s = 4 * 2**j``) has the CANONICAL size
  ``h_{j+1} = ceil(h_j / 2)`` (what every stride-2 "same" op produces);
* a cell at level ``j`` works on ``C_j = F * 2**j`` channels per block and
  outputs the concat of its ``B`` blocks: ``B * C_j`` (``B*F*s/4``) channels.

Cell ``l`` (0-based, ``cell_num`` in TF) sees ``H(l-1)`` (the previous cell's
output) and ``H(l-2)`` (the one before; for cell 0 the stem's second conv, at
``/2`` with 64 channels, as in TF; for cell 1 the stem output):

* going one level coarser: the ops applied to the cell's ORIGINAL inputs
  (``H(l-2)``, ``H(l-1)``) use stride 2; ops on intermediate blocks are
  already at the new size and use stride 1; filters double;
* going one level finer: ``H(l-1)`` is bilinearly upsampled first (to the
  canonical size of the finer level, ``align_corners=True``); filters halve;
* ``H(l-2)`` is bilinearly resized to ``H(l-1)``'s (post-upsampling) size when
  the sizes differ and 1×1-projected (ReLU-conv-BN) to ``C_j`` channels when
  its channel count differs (TF ``_cell_base``);
* ``H(l-1)`` always goes through ReLU-1×1 conv-BN to ``C_j`` channels.

Sizes: TF upsamples ``d`` to ``(d - 1) * 2 + 1`` with ``align_corners=True``.
For the odd sizes TF is meant for (769 -> 385 -> 193 -> 97 -> 49 -> 25) that
IS the canonical size, so this module matches TF exactly there; for other
sizes TF's ``(d - 1) * 2 + 1`` drifts away from the size of the cells at
that level (64 -> 127, not 128), while upsampling to the canonical size keeps
every level the same size wherever the path visits it, so any input works.

Strided atrous ops: TF bilinearly resizes to ``(d - 1) / 2 + 1`` with
``align_corners=True`` and applies a rate-1 conv; for odd ``d`` that resize is
an exact every-other-pixel subsampling, so it equals the OPS table's stride-2
dilation-2 conv (same padding, same parameters, same multiply-adds).
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
from ...utils.configs import find_project_file

#: Drop path never drops a skip connection (identity, or a strided 1×1 when
#: the cell goes coarser), as TF's NAS cells.
_NO_DROP_OPS = ('skip_connect', )

def resolve_genotype_path(path):
    """Find a genotype file; a relative path is tried against the CWD, the
    repo root and the package's shipped configs
    (:func:`~mmseg_autodeeplab.utils.configs.project_search_dirs`).

    Raises:
        GenotypeError: naming the file and the folders that were searched.
    """
    found, candidates = find_project_file(path)
    if found:
        return found
    where = '' if len(candidates) == 1 else ' (looked in: ' + ', '.join(
        dict.fromkeys(osp.dirname(c) or '.' for c in candidates)) + ')'
    raise GenotypeError(f'{path}: genotype file not found{where}')


def _plain(data):
    """ConfigDict/tuple -> plain dict/list, as the JSON would give."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    return data


def load_genotype(genotype):
    """A validated :class:`Genotype` from a path, a JSON dict or a Genotype.

    Never falls back to a default architecture: anything missing or invalid
    raises :class:`GenotypeError` with the file (or ``'inline genotype'``)
    and the field in its message.
    """
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, (str, os.PathLike)):
        return Genotype.load(resolve_genotype_path(genotype))
    if isinstance(genotype, dict):
        return Genotype.from_dict(_plain(genotype), source='inline genotype')
    raise GenotypeError(
        'genotype: expected a path to a genotype JSON file, its content as a '
        f'dict, or a Genotype; got {type(genotype).__name__}')


def drop_path(x, drop_prob, training):
    """Zero whole samples with probability ``drop_prob``; rescale the rest.

    Args:
        x (Tensor): ``(N, C, h, w)``.
        drop_prob (float): probability of dropping a sample's branch.
    """
    if not training or drop_prob <= 0.:
        return x
    keep = 1. - drop_prob
    mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)
    return x * mask / keep


class AutoDeepLabCell(nn.Module):
    """One cell of the static network.

    Args:
        blocks (tuple): the genotype's blocks, each two ``(input, op)``
            pairs; input ``0`` is ``H(l-2)``, ``1`` is ``H(l-1)``, ``k >= 2``
            block ``H(k-1)``.
        channels (int): ``C``, channels per block (``F * 2**level``).
        prev_channels (int): channels of ``H(l-1)``.
        prev_prev_channels (int): channels of ``H(l-2)``.
        stride (int): 2 when this cell is one level coarser than ``H(l-1)``.
        norm_cfg (dict): norm of every BN in the cell (affine).
    """

    def __init__(self, blocks, channels, prev_channels, prev_prev_channels,
                 stride, norm_cfg):
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.preprocess1 = ReLUConvBN(prev_channels, channels, 1,
                                      norm_cfg=norm_cfg)
        # TF projects H(l-2) only when its channel count differs.
        self.preprocess0 = ReLUConvBN(
            prev_prev_channels, channels, 1, norm_cfg=norm_cfg
        ) if prev_prev_channels != channels else nn.Identity()
        self.inputs = []
        self.droppable = []
        self.ops = nn.ModuleList()
        for block in blocks:
            for index, op in block:
                s = stride if index < 2 else 1
                self.ops.append(build_op(op, channels, s, norm_cfg))
                self.inputs.append(index)
                self.droppable.append(op not in _NO_DROP_OPS)
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

    Returns ``(out, conv1)``: the ``/4`` stem output (conv2-BN, no ReLU: every
    consumer starts with one) and the ``/2`` conv1-BN output, which TF feeds
    to the first cell as its ``H(l-2)``.
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
        genotype (str | dict | Genotype): a genotype JSON file (a relative
            path is tried against the CWD, the repo root and the package's
            shipped ``.mim`` folder, see :func:`resolve_genotype_path`), the
            file's content inline as a dict, or a :class:`Genotype`. Always
            validated; there is no default architecture.
        filter_multiplier (int): F; a level-``j`` cell has ``F * 2**j``
            channels per block. 20/32/48 for Auto-DeepLab-S/M/L.
        num_blocks (int, optional): B; must equal the genotype's (a guard
            for configs); None takes it from the genotype.
        in_channels (int): image channels.
        stem_channels (Sequence[int]): widths of the three stem convs.
        norm_cfg (dict): every norm layer (stem, projections, op BNs).
        out_indices (Sequence[int]): cells whose outputs are returned;
            negative values count from the end. Default ``(2, -1)``: Cell_2
            (the decoder's low-level feature) and the last cell.
        drop_path_prob (float): scheduled drop path: the probability of
            dropping a branch in the LAST cell at the END of training; cell
            ``l`` uses ``drop_path_prob * (l + 1) / L * progress``, as TF.
            0 (the default) turns it off. ``progress`` is the runner's
            ``iter / max_iters``, set by :class:`DropPathScheduleHook` (so it
            is right after a resume); 1 until the hook sets it.
        with_cp (bool): gradient checkpointing per cell (exact).
        init_cfg (dict, optional): mmengine init config. The default
            PyTorch conv init already equals TF's NAS initialiser
            (variance scaling 1/3, fan-in, uniform).

    Returns (forward):
        tuple[Tensor]: the outputs of the cells in ``out_indices``,
        ``(N, out_channels[i], h, w)``; the last cell's output goes through
        a ReLU (TF applies one after the last cell).

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
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.genotype = load_genotype(genotype)
        cell_blocks = self.genotype.cell.blocks
        path = self.genotype.path
        if not isinstance(filter_multiplier, int) or isinstance(
                filter_multiplier, bool) or filter_multiplier <= 0:
            raise ValueError('AutoDeepLabNet: filter_multiplier must be a '
                             f'positive integer, got {filter_multiplier!r}')
        if num_blocks is not None and num_blocks != len(cell_blocks):
            raise GenotypeError(
                f'AutoDeepLabNet: num_blocks={num_blocks} but the genotype '
                f'has {len(cell_blocks)} blocks')
        if len(stem_channels) != 3:
            raise ValueError('AutoDeepLabNet: stem_channels needs 3 widths, '
                             f'got {stem_channels!r}')
        if not 0. <= drop_path_prob < 1.:
            raise ValueError('AutoDeepLabNet: drop_path_prob must be in '
                             f'[0, 1), got {drop_path_prob!r}')
        num_layers = len(path)
        indices = []
        for i in out_indices:
            if not -num_layers <= i < num_layers:
                raise ValueError(
                    f'AutoDeepLabNet: out_indices {tuple(out_indices)} out of '
                    f'range for a {num_layers}-cell genotype')
            indices.append(i % num_layers)
        self.out_indices = tuple(indices)
        self.filter_multiplier = filter_multiplier
        self.num_blocks = len(cell_blocks)
        self.num_layers = num_layers
        self.num_levels = self.genotype.search_space.num_levels
        self.path = path
        self.with_cp = with_cp
        self.drop_path_prob = float(drop_path_prob)
        self.drop_path_progress = 1.  # set by DropPathScheduleHook

        self.stem = AutoDeepLabStem(in_channels, stem_channels, norm_cfg)
        self.cells = nn.ModuleList()
        self.upsample = []
        # H(l-2), H(l-1) of cell 0: TF's stem conv1 (/2) and stem output.
        pp_ch, p_ch, p_level = stem_channels[1], stem_channels[2], 0
        for level in path:
            channels = filter_multiplier * 2**level
            self.cells.append(AutoDeepLabCell(
                cell_blocks, channels, p_ch, pp_ch,
                stride=2 if level > p_level else 1, norm_cfg=norm_cfg))
            self.upsample.append(level < p_level)
            pp_ch, p_ch, p_level = p_ch, self.cells[-1].out_channels, level
        self.out_channels = [self.cells[i].out_channels
                             for i in self.out_indices]
        self.out_strides = [self.genotype.search_space.strides[path[i]]
                            for i in self.out_indices]

    # -- scheduled drop path ----------------------------------------------
    def set_drop_path_progress(self, progress):
        """Training progress in [0, 1] for scheduled drop path."""
        self.drop_path_progress = min(max(float(progress), 0.), 1.)

    def cell_drop_prob(self, cell_num):
        """Drop probability of cell ``cell_num`` now (0 in eval)."""
        if not self.training or self.drop_path_prob <= 0.:
            return 0.
        depth = (cell_num + 1) / self.num_layers
        return self.drop_path_prob * depth * self.drop_path_progress

    # -- forward ----------------------------------------------------------
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

    def describe(self):
        """The genotype plus the channel count of each cell."""
        chans = ' '.join(str(c.out_channels) for c in self.cells)
        return self.genotype.describe() + f'\ncell channels: {chans}'


__all__ = ['AutoDeepLabNet', 'AutoDeepLabCell', 'AutoDeepLabStem',
           'load_genotype', 'resolve_genotype_path', 'drop_path']
