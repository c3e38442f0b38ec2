#!/usr/bin/env bash
# The training campaign of the next bundled model (issues 11 and 13): resumable across sessions.
# Legs (each a run of its own, state in campaign/<leg>/):
#   ft_intervals  the shipped model fine-tuned with known-interval rows (interval_share 0.25) and
#                 half of the rows at t = 0 (t_zero_share 0.5, lr 3e-4): 2217 steps, about 136
#                 CPU-thread minutes; held-out likelihood fell on every set (docs/RESULTS.md section 10)
#   ft_elbo       the shipped model fine-tuned with interval rows on the plain ELBO (t_zero_share 0,
#                 unbiased) at lr 1e-4: 1613 steps, 107 CPU-thread minutes, festvox 8.920 -> 8.960
#   ft_plain      ft_elbo without the interval rows (linear PCM only): does the fine-tune itself help?
#   lowbyte       a low-byte specialist (ardm.known_bits = 8: one 256-way stage) started from the
#                 shipped model's weights (its low-byte rows), same data, lr and seed as ft_elbo: the
#                 equal-time comparison of issue 11 item 3: 2092 steps, 108 CPU-thread minutes; low
#                 byte better on every set, but the posterior mean (one t = 0 call) worse on music
#   lowbyte_t0    lowbyte continued with half of the rows at t = 0 (t_zero_share 0.5, as the shipped
#                 model's last stage): the call `enhance --mode mean` makes gets its weight back
#   g711          the shipped all-16-bit model fine-tuned for known intervals (issue 13): three
#                 quarters of the rows conditioned (a quarter each linear 4..12 bits, mu-law, A-law),
#                 half of the rows at t = 0 (the call `--mode mean` reads), lr 1e-4, seed 4
#   g711i         g711 continued with the interval features (model.interval_features: the network
#                 sees where each sample's known interval lies in the stage's range and how wide it
#                 is; the width input starts as a zero column), lr 2e-4, seed 5 (a 10-minute start
#                 with the width input alone, g711w, was dropped); stopped at step 3600 when its
#                 mu-law posterior mean had not moved since step 2461 (docs/RESULTS.md section 16)
#   g711s         g711i continued under the model's new distribution for intervals that cut their edge
#                 digits (each allowed digit weighted by the share of it the interval allows,
#                 docs/RESULTS.md section 19): lr 1e-4, seed 7; models/intervals.pt is its step 2484
#   fast24        a low-byte model at about a quarter of the shipped one's cost per sample (24
#                 channels x 12 blocks, the same receptive field), from scratch, half of the rows at
#                 t = 0: the network issue 15's 20x posterior mean needs (docs/RESULTS.md section 16)
#
#   bash scripts/campaign.sh start [THREADS] [LEG]   # resume in the background (nohup), default 2 threads
#   bash scripts/campaign.sh stop [LEG]              # SIGTERM: the run finishes its step, writes a checkpoint
#   bash scripts/campaign.sh save [LEG]              # copy the run's state into campaign/LEG (commit it)
#   bash scripts/campaign.sh status [LEG]            # last log lines
#
# State between sessions lives in campaign/LEG/ (latest.pt with optimiser state, config.toml,
# log.jsonl), small enough to commit. The run itself works in runs/campaign_LEG/ (ignored by git:
# it also holds a decoded cache of the corpus). The corpus comes from ../shared/corpus/make_corpus.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${UPSCALE_AUDIO_CORPUS:-$HOME/.cache/upscale-audio-corpus/corpus}
case "${1:-status}" in start) LEG=${3:-ft_elbo} ;; *) LEG=${2:-ft_elbo} ;; esac
RUN=runs/campaign_$LEG
# the project's venv when there is one (a shell without it activated must not fail silently)
UA=$(command -v upscale-audio || true)
[ -x .venv/bin/upscale-audio ] && UA=.venv/bin/upscale-audio
[ -n "$UA" ] || { echo "error: upscale-audio not found; install the package (README) or activate its venv" >&2; exit 2; }
SAVED=campaign/$LEG
case "${1:-status}" in
  start)
    threads=${2:-2}
    INIT=upscale_audio/models/default.pt
    case $LEG in
      ft_intervals) LEG_SET=(--set 'ardm.stage_draw=[1,3]' --set ardm.t_zero_share=0.5 --set ardm.interval_share=0.25 --set train.lr=3e-4) ;;
      ft_elbo) LEG_SET=(--set 'ardm.stage_draw=[1,3]' --set ardm.t_zero_share=0 --set ardm.interval_share=0.25 --set train.lr=1e-4) ;;
      ft_plain) LEG_SET=(--set 'ardm.stage_draw=[1,3]' --set ardm.t_zero_share=0 --set ardm.interval_share=0 --set train.lr=1e-4) ;;
      lowbyte) LEG_SET=(--set ardm.known_bits=8 --set ardm.t_zero_share=0 --set train.lr=1e-4) ;;
      lowbyte_t0) LEG_SET=(--set ardm.known_bits=8 --set ardm.t_zero_share=0.5 --set train.lr=1e-4 --set train.seed=3)
                  INIT=campaign/lowbyte/latest.pt ;;
      g711) LEG_SET=(--set ardm.t_zero_share=0.5 --set ardm.interval_share=0.75 --set train.lr=1e-4 --set train.seed=4) ;;
      g711i) LEG_SET=(--set ardm.t_zero_share=0.5 --set ardm.interval_share=0.75 --set train.lr=2e-4 --set train.seed=5
                      --set model.interval_features=true)
             INIT=campaign/g711/latest.pt ;;
      g711s) LEG_SET=(--set ardm.t_zero_share=0.5 --set ardm.interval_share=0.75 --set train.lr=1e-4 --set train.seed=7
                      --set model.interval_features=true)
             INIT=campaign/g711i/latest.pt ;;
      fast24) LEG_SET=(--set ardm.known_bits=8 --set ardm.t_zero_share=0.5 --set model.channels=24 --set train.lr=1e-3
                       --set train.seed=6)
              INIT="" ;;
      *) echo "error: unknown leg $LEG (ft_intervals, ft_elbo, ft_plain, lowbyte, lowbyte_t0, g711, g711i, g711s, fast24)" >&2
         exit 2 ;;
    esac
    INIT_ARG=()
    [ -n "$INIT" ] && INIT_ARG=(--init "$INIT")
    mkdir -p "$RUN"
    if [ ! -f "$RUN/latest.pt" ] && [ -f "$SAVED/latest.pt" ]; then
      cp "$SAVED/latest.pt" "$SAVED/config.toml" "$SAVED/log.jsonl" "$RUN/"
    fi
    nohup "$UA" train "$C/speech_16k/train" "$C/speech_8k/train" "$C/music_44k/train" \
      --val "$C/speech_16k/heldout" --config configs/default.toml --run-dir "$RUN" --max-minutes 600 \
      "${INIT_ARG[@]}" --set train.seed=2 "${LEG_SET[@]}" --set train.warmup_steps=100 \
      --set train.ckpt_every=100 --set train.val_every=200 --set train.val_crops=16 --set train.val_passes=1 \
      --set train.log_every=50 --set train.num_threads="$threads" >> "$RUN.log" 2>&1 &
    echo $! > "$RUN.pid"
    sleep 5
    kill -0 "$(cat "$RUN.pid")" 2>/dev/null || { echo "error: the run did not start; see $RUN.log" >&2; exit 2; }
    echo "campaign running (pid $(cat "$RUN.pid"), $threads threads); log: $RUN.log" ;;
  stop)
    kill -TERM "$(cat "$RUN.pid")" && echo "asked the run to stop after its step (it writes a checkpoint)" ;;
  save)
    mkdir -p "$SAVED"
    cp "$RUN/latest.pt" "$RUN/config.toml" "$RUN/log.jsonl" "$SAVED/"
    echo "saved to $SAVED (commit it)" ;;
  status)
    tail -n 3 "$RUN.log" ;;
  *) echo "usage: $0 start [THREADS] | stop | save | status" >&2; exit 2 ;;
esac
