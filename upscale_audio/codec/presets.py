"""The codec's presets (imported without torch: ``info`` prints them)."""

# Presets, like FLAC's -0..-8: network calls per stage (K). Time grows with K (stages x K network
# passes over every block): on 60 s of 16 kHz speech, 2 threads, K = 4 ran at 0.68x real time and
# K = 8 at 0.34x, so fast (K = 2) and default (K = 4) meet 1x and 0.5x; size falls towards the
# full-budget ELBO as K grows (docs/RESULTS.md, codec presets).
PRESETS = {"fast": 2, "default": 4, "best": 64}
