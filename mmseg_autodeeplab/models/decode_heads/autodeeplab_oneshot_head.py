"""The retraining head (:class:`AutoDeepLabV3PlusHead`) for a one-shot
network, whose input widths follow the active genotype.

The layers that read the backbone (image pooling and ASPP on the last cell,
the low-level projection on Cell_2) exist once per level; the rest is one
shared set. After :meth:`AutoDeepLabOneShotHead.activate`, the head runs
exactly the :class:`AutoDeepLabV3PlusHead` that the decoded config builds,
and :meth:`subnet_state_dict` is that head's state.
"""
import torch.nn as nn
from mmseg.registry import MODELS

from .autodeeplab_head import AutoDeepLabV3PlusHead

#: The level-dependent layers: (attribute of the head, list attribute).
_PER_LEVEL = (('image_pool', 'image_pool_levels'),
              ('aspp_modules', 'aspp_levels'),
              ('c1_bottleneck', 'c1_levels'))


@MODELS.register_module()
class AutoDeepLabOneShotHead(AutoDeepLabV3PlusHead):
    """:class:`AutoDeepLabV3PlusHead` over the levels of a one-shot network.

    Args:
        in_channels (Sequence[int]): the last cell's width per level
            (``B * F * 2**j``).
        c1_in_channels (Sequence[int]): Cell_2's width per level.
        **kwargs: :class:`AutoDeepLabV3PlusHead` arguments.
    """

    def __init__(self, in_channels, c1_in_channels, **kwargs):
        in_channels, c1_in_channels = list(in_channels), list(c1_in_channels)
        if len(in_channels) != len(c1_in_channels) or not in_channels:
            raise ValueError(
                'AutoDeepLabOneShotHead: in_channels and c1_in_channels need '
                f'one width per level, got {in_channels} and {c1_in_channels}')
        super().__init__(in_channels=in_channels[0],
                         c1_in_channels=c1_in_channels[0], **kwargs)
        # the per-level layers of a head built for each level
        heads = [self] + [AutoDeepLabV3PlusHead(
            in_channels=a, c1_in_channels=c, **kwargs)
            for a, c in zip(in_channels[1:], c1_in_channels[1:])]
        for name, levels in _PER_LEVEL:
            setattr(self, levels, nn.ModuleList(
                h._modules.pop(name) for h in heads))
        self.activate((0, 0))

    def activate(self, levels):
        """Run Cell_2 at level ``levels[0]`` and the last cell at
        ``levels[1]``."""
        c1, last = levels
        for name, levels_name in _PER_LEVEL:
            # a plain attribute, not a child: the layer's owner is the list
            self.__dict__[name] = getattr(self, levels_name)[
                c1 if name == 'c1_bottleneck' else last]

    def subnet_state_dict(self):
        """The active head's state, as :class:`AutoDeepLabV3PlusHead`
        keys."""
        lists = tuple(f'{levels}.' for _, levels in _PER_LEVEL)
        state = {k: v for k, v in self.state_dict().items()
                 if not k.startswith(lists)}
        for name, _ in _PER_LEVEL:
            state.update({f'{name}.{k}': v for k, v in
                          getattr(self, name).state_dict().items()})
        return state
