"""Benchmark the search supernet (time, memory, FLOP rate); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.benchmark_search import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
