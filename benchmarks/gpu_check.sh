#!/usr/bin/env bash
# One prepared script for a lent GPU (see README "GPU"): CUDA tests, throughput, and a training
# run of the default config (exported to $OUT/default.pt) with its held-out bpd. Data: FLAC subsets of the corpus in
# .gpudata/ (made by scripts/make_gpudata.py); wheels for soundfile in .whl/.
# Usage on the GPU machine:  OUT=/some/dir SECONDS_DEFAULT=300 [SKIP_CHECKS=1] [INIT=model.pt] bash benchmarks/gpu_check.sh
# INIT continues from a model (e.g. upscale_audio/models/default.pt: a fresh schedule, its weights).
set -u
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
OUT=${OUT:-out}; mkdir -p "$OUT"
D=.gpudata
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, numba, soundfile; print('torch', torch.__version__, torch.cuda.get_device_name(), 'bf16', torch.cuda.is_bf16_supported())"
if [ "${SKIP_CHECKS:-0}" != 1 ]; then
  echo "== 1. CUDA tests"
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -5
  echo "== 2. throughput"
  timeout 90 python3 benchmarks/bench_throughput.py --config configs/default.toml --batch 8 64 --out "$OUT/throughput_gpu.json" 2>&1 | tail -6
fi
echo "== 3. default model: all 16 bits, speech + music at native rates"
timeout $(( ${SECONDS_DEFAULT:-300} + 90 )) python3 -m upscale_audio train $D/speech_16k/train $D/speech_8k/train $D/music_44k/train \
  --val $D/speech_16k/heldout --config configs/default.toml --run-dir /tmp/runs/default \
  --set train.batch_size=64 --set train.val_every=500 --set train.ckpt_every=500 --set train.log_every=100 \
  --max-minutes $(python3 -c "print(${SECONDS_DEFAULT:-300}/60)") ${INIT:+--init "$INIT"} --quiet 2>&1 | tail -3
cp /tmp/runs/default/log.jsonl "$OUT/default_log.jsonl" 2>/dev/null
python3 -m upscale_audio export /tmp/runs/default/latest.pt "$OUT/default.pt" && ls -la "$OUT"
python3 -m upscale_audio info --model "$OUT/default.pt"
for s in speech_16k music_44k speech_8k; do
  echo "bpd $s low byte:"; python3 -m upscale_audio bpd $D/$s/heldout --model "$OUT/default.pt" --given-bits 8 --passes 2 --json
  echo "bpd $s full:"; python3 -m upscale_audio bpd $D/$s/heldout --model "$OUT/default.pt" --given-bits 0 --passes 2 --json
done
echo "== 4. enhance --mode mean on the GPU (speed; the first file includes start-up)"
mkdir -p /tmp/enh && ls $D/speech_16k/heldout | head -40 | sed "s|^|$D/speech_16k/heldout/|" > /tmp/enh/list
python3 - "$OUT/default.pt" <<'PY'
import sys, time, torch
from pathlib import Path
from upscale_audio import audio, checkpoint
from upscale_audio.enhance import enhance_array
lm = checkpoint.load(sys.argv[1])
files = [audio.read(p.strip()) for p in open("/tmp/enh/list")]
secs = sum(a.frames / a.rate for a in files)
for dev in ("cuda", "cpu"):
    enhance_array(files[0].u[:, :8000], 8, lm, mode="mean", device=torch.device(dev))
    t = time.perf_counter()
    for a in files:
        enhance_array(a.u, 8, lm, mode="mean", device=torch.device(dev), rate=a.rate)
    if dev == "cuda":
        torch.cuda.synchronize()
    print(f"mean mode on {dev}: {secs:.1f} s of audio, {secs / (time.perf_counter() - t):.1f}x real time")
PY
