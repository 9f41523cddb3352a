"""Parameters, multiply-adds and latency: Auto-DeepLab-S/M/L vs mmseg.

Usage: python tools/benchmark.py [--models NAME ...] [--size HxW]
       [--device cpu|cuda[:N]] [--repeat N] [--warmup W] [--no-latency]
       [--no-macs] [--reference NAME] [--filter-multiplier F] [--out DIR]
       [--config FILE ...] [--onnxruntime]

Names: autodeeplab-s, autodeeplab-m, autodeeplab-l, deeplabv3plus-r50,
deeplabv3plus-r101, pspnet-r101, bisenetv2; --config adds any segmentor
config (repeatable), --onnxruntime a second runtime column. Writes DIR/benchmark.md and
DIR/benchmark.json (default DIR: work_dirs/benchmark). See
mmseg_autodeeplab/cli/benchmark.py for what is measured and how.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.benchmark import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
