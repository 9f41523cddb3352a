"""Export a segmentor (config + checkpoint) to ONNX, verified by onnxruntime.

Usage: python tools/export_onnx.py CONFIG CHECKPOINT --out FILE.onnx
       --shape H W [--dynamic [--check-shape H W]] [--output logits|labels]

Needs the deploy extra: pip install 'mmseg-autodeeplab[deploy]'.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.export_onnx import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
