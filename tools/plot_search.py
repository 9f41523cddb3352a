"""Plot an Auto-DeepLab search from its work_dir.

Usage: python tools/plot_search.py WORK_DIR [--out DIR] [--entry -1]
       [--arch-start-epoch E]

Reads WORK_DIR/search_history.json and writes into DIR (default
WORK_DIR/plots): alpha_heatmap.png, beta_trellis.png, cell.png and
search_curves.png. Bad input: one line on stderr, exit code 2, no files.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.visualization.search_plots import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
