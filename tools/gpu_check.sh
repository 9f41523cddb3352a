#!/usr/bin/env bash
# One-shot GPU check of the search (issue 21): run ONCE on a machine with a
# GPU, from the repository root; about 8 minutes on an H100/H200.
#
#   WHEELS=DIR bash tools/gpu_check.sh [OUT_DIR]      (default work_dirs/gpu_check)
#
# 1. installs mmengine / mmcv-lite / mmseg from the wheels in $WHEELS if
#    they are missing (a GPU machine without a package registry). Prepare
#    DIR where a registry is reachable, for the GPU machine's Python (3.12):
#      pip download --only-binary=:all: --python-version 3.12 \
#        --platform manylinux2014_x86_64 -d DIR mmengine==0.10.7 \
#        mmcv-lite==2.1.0 mmsegmentation==1.2.2 ftfy regex pytest
#    (torch comes with the machine; nothing here installs it);
# 2. the mixed-precision tests on the GPU (float16 and bfloat16 autocast
#    through the fused BN kernels, float16 loss scaling, exact resume);
# 3. benchmark_search at the paper's crop (321x321, batch 2): fused,
#    fused+cp, fused+amp, fused+cp+amp side by side, with the projected
#    wall time of the paper's search (40 epochs, alpha/beta from 20) and
#    peak memory for each. Paste OUT_DIR/benchmark_search.md into docs/gpu.md;
# 4. ops dispatched and CUDA kernels launched per weight step and per
#    alpha/beta step (F=8, L=12, 129x129, batch 2; tools/analysis/count_ops.py):
#    launches bound a GPU step made of small ops. Paste OUT_DIR/ops.txt too.
set -uo pipefail
OUT=${1:-work_dirs/gpu_check}
PY=${PYTHON:-python}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

if ! $PY -c 'import mmseg, mmengine, pytest' 2>/dev/null; then
    if [ -z "${WHEELS:-}" ]; then
        echo "error: mmseg/mmengine/pytest not importable and WHEELS is not set (see the header of $0)" >&2
        exit 2
    fi
    $PY -m pip install -q --no-index --find-links "$WHEELS" mmengine==0.10.7 \
        mmcv-lite==2.1.0 mmsegmentation==1.2.2 ftfy regex pytest || exit 2
fi
$PY - <<'EOF' | tee "$OUT/device.txt"
import torch
assert torch.cuda.is_available(), 'no GPU visible to torch'
print(f'torch {torch.__version__}, {torch.cuda.get_device_name(0)}, '
      f'bf16 supported: {torch.cuda.is_bf16_supported()}')
EOF
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 2

echo "== mixed-precision tests (GPU) =="
timeout 240 $PY -m pytest -q -p no:cacheprovider -m 'slow or not slow' \
    tests/test_engine/test_amp.py 2>&1 | tail -15 | tee "$OUT/tests.txt"

echo "== benchmark: 321x321, batch 2, with the projected paper search =="
timeout 420 $PY tools/analysis/benchmark_search.py --device cuda --crop 321x321 \
    --batch 2 --warmup 2 --repeat 5 --no-macs --train-images 2975 \
    --variants fused fused+cp fused+amp fused+cp+amp --out "$OUT" \
    2>&1 | grep -v Warning | tee "$OUT/benchmark.txt"

echo "== ops dispatched and CUDA kernels launched per step (129x129, batch 2) =="
timeout 300 $PY tools/analysis/count_ops.py --device cuda --top 15 \
    --variants fused fused+amp --json "$OUT/ops.json" \
    2>&1 | grep -v Warning | tee "$OUT/ops.txt"
echo "wrote $OUT/{device,tests,benchmark,ops}.txt, $OUT/ops.json and $OUT/benchmark_search.{md,json}"
