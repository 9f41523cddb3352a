"""Run an Auto-DeepLab architecture search.

Usage: python tools/search.py CONFIG [--work-dir DIR] [--resume] [--amp]
       [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.search import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
