"""Plots of a search run (``tools/plot_search.py``)."""
from .search_plots import (SearchHistoryError, check_entry, check_history,
                           entry_choices, infer_arch_start, load_history,
                           plot_all, plot_alpha_heatmap, plot_beta_trellis,
                           plot_cell, plot_search_curves, select_entry)

__all__ = [
    'SearchHistoryError', 'check_entry', 'check_history', 'entry_choices',
    'infer_arch_start', 'load_history', 'plot_all', 'plot_alpha_heatmap',
    'plot_beta_trellis', 'plot_cell', 'plot_search_curves', 'select_entry'
]
