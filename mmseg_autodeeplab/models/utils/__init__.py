"""Kernels of the supernet's fused path (see :mod:`.fused_edges`)."""
from .fused_edges import fused_edges, fused_form, relu_conv_bn
from .stacked_bn import stacked_batch_norm

__all__ = ['fused_edges', 'fused_form', 'relu_conv_bn', 'stacked_batch_norm']
