"""Kernels of the supernet's fused path (see :mod:`.fused_edges`)."""
from .fused_edges import fused_edges, fused_form, relu_conv_bn
from .relu_conv import relu_conv, relu_conv_norm
from .stacked_bn import stacked_batch_norm

__all__ = ['fused_edges', 'fused_form', 'relu_conv', 'relu_conv_bn',
           'relu_conv_norm', 'stacked_batch_norm']
