#!/usr/bin/env bash
# The training campaign of the next bundled model (issues 11 and 13): resumable across sessions.
# Today's leg: the shipped model (configs/default.toml) fine-tuned with known-interval rows
# (ardm.interval_share: linear depths and G.711), so one bundled model restores mu-law/A-law too;
# the prior recipe (configs/prior.toml) lost the equal-time comparison (docs/RESULTS.md section 8).
#
#   bash scripts/campaign.sh start [THREADS]   # resume in the background (nohup), default 2 threads
#   bash scripts/campaign.sh stop              # SIGTERM: the run finishes its step, writes a checkpoint
#   bash scripts/campaign.sh save              # copy the run's state into campaign/ (commit it)
#   bash scripts/campaign.sh status            # last log lines
#
# State between sessions lives in campaign/ft_intervals/ (latest.pt with optimiser state, config.toml,
# log.jsonl), small enough to commit. The run itself works in runs/campaign_ft_intervals/ (ignored by git:
# it also holds a decoded cache of the corpus). The corpus comes from ../shared/corpus/make_corpus.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${UPSCALE_AUDIO_CORPUS:-$HOME/.cache/upscale-audio-corpus/corpus}
RUN=runs/campaign_ft_intervals
# the project's venv when there is one (a shell without it activated must not fail silently)
UA=$(command -v upscale-audio || true)
[ -x .venv/bin/upscale-audio ] && UA=.venv/bin/upscale-audio
[ -n "$UA" ] || { echo "error: upscale-audio not found; install the package (README) or activate its venv" >&2; exit 2; }
SAVED=campaign/ft_intervals
case "${1:-status}" in
  start)
    threads=${2:-2}
    mkdir -p "$RUN"
    if [ ! -f "$RUN/latest.pt" ] && [ -f "$SAVED/latest.pt" ]; then
      cp "$SAVED/latest.pt" "$SAVED/config.toml" "$SAVED/log.jsonl" "$RUN/"
    fi
    nohup "$UA" train "$C/speech_16k/train" "$C/speech_8k/train" "$C/music_44k/train" \
      --val "$C/speech_16k/heldout" --config configs/default.toml --run-dir "$RUN" --max-minutes 600 \
      --init upscale_audio/models/default.pt --set 'ardm.stage_draw=[1,3]' --set ardm.t_zero_share=0.5 \
      --set ardm.interval_share=0.25 --set train.lr=3e-4 --set train.warmup_steps=100 --set train.seed=2 \
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
