#!/usr/bin/env bash
# The GPU check of `clasp index --device cuda`, prepared for a lent GPU machine (about 8 minutes):
# encode-only and encode+decode throughput at encoder batches 8, 32 and 64, hours of audio per
# GPU-hour, and peak GPU memory (benchmarks/gpu_throughput.py). Results land in $OUT.
#
# That machine has torch, numpy and onnxruntime but none of clasp's own stack, and nothing can be
# fetched there. What it needs travels with the tree, ignored by git (.git/info/exclude):
#   .whl/   cp312 manylinux wheels: ctranslate2 (a build for the CUDA the machine has), faster-whisper,
#           av, soundfile, soxr, hnswlib, usearch, typer, rich, safetensors
#           (pip download --no-deps --only-binary=:all: --python-version 3.12 ..., see the device README)
#   .gpu-cache/weights/whisper-base/   the CT2 whisper-base folder clasp assembles in ~/.cache/clasp/weights
#           (142 MB: more than one call may carry, so it goes over in parts, `split -b 50M`, in calls
#           made while the machine is still warm, and is joined here by the first step below)
# Run from the repository root:  bash benchmarks/gpu_check.sh
set -euo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
W=.gpu-cache/weights/whisper-base
if [ -d "$W" ] && ls "$W"/model.bin.part-* >/dev/null 2>&1 && [ ! -f "$W/model.bin" ]; then
  cat "$W"/model.bin.part-* > "$W/model.bin.tmp" && mv "$W/model.bin.tmp" "$W/model.bin"
fi
export CLASP_CACHE=$PWD/.gpu-cache  # clasp finds whisper-base there instead of joining its wheels
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
timeout 420 python3 benchmarks/gpu_throughput.py --device cuda --minutes 20 --out "$OUT/gpu-throughput.json" 2>&1 | tee "$OUT/log.txt"
