"""Segment images with a config + checkpoint (mmseg's MMSegInferencer).

Usage: python tools/infer.py CONFIG CHECKPOINT IMAGE|FOLDER [...] --out DIR
       [--device cuda:0] [--opacity 0.5] [--with-labels]

Writes DIR/pred/NAME.png (label map) and DIR/vis/NAME.png (overlay).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.infer import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
