"""How well a search's supernet ranks architectures against retraining.

Usage: python tools/supernet_rank.py SEARCH_WORK_DIR COMPARISON_DIR
       [--checkpoint PTH] [--calib-batches 8] [--out DIR]

COMPARISON_DIR is the ``tools/search_vs_random.py --out`` folder of that
search. Writes supernet_rank.json / .md (Kendall τ) there.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.supernet_rank import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
