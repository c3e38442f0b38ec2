#!/usr/bin/env bash
# Reference outputs of the bundled model for refactors that must not change bits: sampling (mono,
# stereo, chunked), the posterior mean (8-bit, mu-law), A-law sampling, two .uad files and bpd.
# Run it before and after a change and compare the md5 lists:
#   bash scripts/reference_outputs.sh /tmp/before; ...change...; bash scripts/reference_outputs.sh /tmp/after
set -e
cd "$(dirname "$0")/.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
export OMP_NUM_THREADS=1
OUT=${1:?usage: scripts/reference_outputs.sh OUT_DIR}
mkdir -p "$OUT"
export OUT
python - <<'PY'
import os, soundfile as sf, numpy as np
O = os.environ["OUT"] + "/in_"
x, sr = sf.read("samples/speech_en_8k.16bit-original.wav", dtype="int16")
sf.write(O + "clip16.wav", x[:12000], sr, subtype="PCM_16")
sf.write(O + "clip8.wav", x[:12000] >> 8 << 8, sr, subtype="PCM_U8")
y, sr2 = sf.read("samples/organ_stereo_44k.16bit-original.wav", dtype="int16")
sf.write(O + "st16.wav", y[:30000], sr2, subtype="PCM_16")
sf.write(O + "st8.wav", y[:30000], sr2, subtype="PCM_U8")
sf.write(O + "clip.ulaw.wav", x[:12000], sr, subtype="ULAW")
sf.write(O + "clip.alaw.wav", x[:12000], sr, subtype="ALAW")
PY
upscale-audio enhance $OUT/in_clip8.wav -o $OUT/s4.wav --mode sample --steps 4 --seed 3 -q
upscale-audio enhance $OUT/in_st8.wav -o $OUT/st_s3.wav --mode sample --steps 3 --seed 1 -q
upscale-audio enhance $OUT/in_clip8.wav -o $OUT/mean.wav --mode mean -q
upscale-audio enhance $OUT/in_clip.ulaw.wav -o $OUT/mean_u.wav --mode mean -q
upscale-audio enhance $OUT/in_clip.alaw.wav -o $OUT/s_a.wav --mode sample --steps 2 -q
upscale-audio enhance $OUT/in_clip8.wav -o $OUT/s4c.wav --mode sample --steps 4 --seed 3 --chunk-seconds 0.3 -q
upscale-audio compress $OUT/in_clip16.wav -o $OUT/c.uad --steps 3 -q
upscale-audio compress $OUT/in_st16.wav -o $OUT/st.uad --steps 2 -q
upscale-audio bpd $OUT/in_clip16.wav $OUT/in_st16.wav --steps 4 --json > $OUT/bpd4.json
upscale-audio bpd $OUT/in_clip16.wav --steps 4 --json > $OUT/bpd4_one.json
upscale-audio bpd $OUT/in_clip16.wav --passes 2 --json > $OUT/bpdfull.json
upscale-audio bpd $OUT/in_clip16.wav --given ulaw --passes 2 --json > $OUT/bpdu.json
md5sum $OUT/* | grep -v /in_
