#!/usr/bin/env bash
# The training campaign of the next bundled model (issue 11): resumable across sessions.
#
#   bash scripts/campaign.sh start [THREADS]   # resume in the background (nohup), default 2 threads
#   bash scripts/campaign.sh stop              # SIGTERM: the run finishes its step, writes a checkpoint
#   bash scripts/campaign.sh save              # copy the run's state into campaign/ (commit it)
#   bash scripts/campaign.sh status            # last log lines
#
# State between sessions lives in campaign/prior/ (latest.pt with optimiser state, config.toml,
# log.jsonl), small enough to commit. The run itself works in runs/campaign_prior/ (ignored by git:
# it also holds a decoded cache of the corpus). The corpus comes from ../shared/corpus/make_corpus.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${UPSCALE_AUDIO_CORPUS:-$HOME/.cache/upscale-audio-corpus/corpus}
RUN=runs/campaign_prior
SAVED=campaign/prior
case "${1:-status}" in
  start)
    threads=${2:-2}
    mkdir -p "$RUN"
    if [ ! -f "$RUN/latest.pt" ] && [ -f "$SAVED/latest.pt" ]; then
      cp "$SAVED/latest.pt" "$SAVED/config.toml" "$SAVED/log.jsonl" "$RUN/"
    fi
    nohup upscale-audio train "$C/speech_16k/train" "$C/speech_8k/train" "$C/music_44k/train" \
      --val "$C/speech_16k/heldout" --config configs/prior.toml --run-dir "$RUN" --max-minutes 600 \
      --set train.num_threads="$threads" --set train.warmup_steps=50 --set train.val_every=100 \
      --set train.val_crops=16 --set train.val_passes=1 --set train.ckpt_every=50 --set train.log_every=25 \
      >> "$RUN.log" 2>&1 &
    echo $! > "$RUN.pid"
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
