"""Plots of a search run (``tools/plot_search.py``)."""
from .search_plots import (SearchHistoryError, infer_arch_start, load_history,
                           plot_all, plot_alpha_heatmap, plot_beta_trellis,
                           plot_cell, plot_search_curves, read_entry)

__all__ = [
    'SearchHistoryError', 'infer_arch_start', 'load_history', 'plot_all',
    'plot_alpha_heatmap', 'plot_beta_trellis', 'plot_cell',
    'plot_search_curves', 'read_entry'
]
