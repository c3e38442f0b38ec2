"""Training loop: AdamW, warm-up + cosine, clipping, EMA, per-step loss tracking, resume, DDP.

Runs unchanged under ``torchrun`` (gloo on CPU, NCCL on GPU): each rank draws its own crops, DDP
averages gradients, rank 0 logs and writes checkpoints. The run dir holds ``config.toml``,
``log.jsonl`` and ``latest.pt`` (a complete checkpoint that ``--model`` accepts).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from . import ardm, policy
from .checkpoint import atomic_save, make_checkpoint, read_raw
from .config import RunConfig, to_toml
from .data import Corpus, load_corpus
from .errors import UserError
from .model import build_model, narrow_to_stages, widen_inputs


def _dist_info() -> tuple[int, int, int]:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _stop_on_signals() -> dict[str, int | None]:
    """SIGTERM / SIGHUP / SIGINT end the run cleanly after the current step: a checkpoint is written
    and the run resumes from it later (``nohup ... &`` then ``kill PID`` to pause a campaign)."""
    import signal

    state: dict[str, int | None] = {"signal": None}

    def handler(signum: int, frame: object) -> None:
        if state["signal"] is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        state["signal"] = signum
        print(f"signal {signum}: stopping after this step with a checkpoint", file=sys.stderr)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (tests): leave the defaults
            pass
    return state


def lr_at(cfg: RunConfig, progress: float, step: int) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` as progress goes 0 -> 1."""
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    c = 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * c)


@torch.no_grad()
def validate(model: torch.nn.Module, crops: torch.Tensor, cfg: RunConfig, passes: int, device: torch.device) -> float:
    """Mean bits per sample of fixed validation crops (``passes`` ELBO draws, fixed seed)."""
    maps = ardm.StageMaps(cfg.ardm.schedule)
    g = torch.Generator().manual_seed(4321)
    ce_fn = ardm.ce_fn_of(model)
    stages = maps.modelled_stages(cfg.ardm.known_bits)
    vals = []
    for _ in range(passes):
        for i in range(0, len(crops), 8):
            u = crops[i : i + 8].to(device)
            lo, hi = ardm.top_bits_interval(u, cfg.ardm.known_bits)
            vals.append(ardm.elbo_draw(ce_fn, u, maps, stages, lo, hi, g))
    return float(torch.cat(vals).mean())


def train(
    cfg: RunConfig,
    data: list[Path],
    run_dir: Path,
    val: list[Path] | None = None,
    max_minutes: float | None = None,
    quiet: bool = False,
    init: Path | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run in ``run_dir``. Returns the final log record.

    ``init``: start a new run from this checkpoint's weights (EMA weights, per-step losses) with a
    fresh optimiser and schedule: fine-tuning. Ignored when the run dir already holds a run.
    """
    rank, world, local_rank = _dist_info()
    use_cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    latest = run_dir / "latest.pt"
    resume = read_raw(latest) if latest.is_file() else None
    if resume is not None:
        old = RunConfig.from_dict(resume["config"])
        if old.model != cfg.model or old.ardm != cfg.ardm:
            raise UserError(f"{run_dir} holds a run with another model/ardm config; use a new --run-dir")
        if "training" not in resume:
            raise UserError(f"{latest} has no training state (exported model); use a new --run-dir")
        if resume["training"]["step"] >= cfg.train.max_steps:
            raise UserError(f"run in {run_dir} already finished at step {resume['training']['step']}; "
                            "raise --max-steps to continue it or choose a new --run-dir")

    start = read_raw(init) if init is not None and resume is None else None
    init_known_bits = 0
    if start is not None:
        old = RunConfig.from_dict(start["config"])
        init_known_bits = old.ardm.known_bits
        narrower = old.ardm.known_bits > cfg.ardm.known_bits  # the init models fewer stages than the run
        # the one model change an init may take: gaining the interval-width input (a zero column)
        same_model = dataclasses.replace(old.model, interval_features=cfg.model.interval_features) == cfg.model and \
            old.model.interval_features <= cfg.model.interval_features
        if not same_model or old.ardm.schedule != cfg.ardm.schedule or narrower:
            raise UserError(f"{init} has another model config or schedule, or models fewer stages; --init needs "
                            f"the same [model] (model.interval_features may be switched on) and ardm.schedule as "
                            f"--config, and ardm.known_bits no larger")

    corpus = load_corpus(data, run_dir / "cache" if rank == 0 else None, quiet=quiet)
    val_corpus: Corpus | None = load_corpus(val, None, quiet=True) if val else None
    cfg = cfg.replace("data", sample_rates=corpus.rates)

    torch.manual_seed(cfg.train.seed + rank)
    gen = torch.Generator().manual_seed(cfg.train.seed * 1000 + rank)
    model = build_model(cfg).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    maps = ardm.StageMaps(cfg.ardm.schedule)
    tracker = policy.StepLossTracker(cfg.ardm.schedule, cfg.ardm.tracker_bins, cfg.ardm.tracker_momentum)
    step, elapsed_before = 0, 0.0
    if start is not None:  # an all-16-bit model may start a specialist for fewer stages (the rows it keeps)
        weights = narrow_to_stages(start["model"], model, tuple(maps.modelled_stages(init_known_bits)))
        weights = widen_inputs(weights, model)
        model.load_state_dict(weights)
        ema.load_state_dict(weights)
        tracker.load_state_dict(start["tracker"])
    if resume is not None:
        tr = resume["training"]
        model.load_state_dict(tr["model"])
        ema.load_state_dict(resume["model"])
        opt.load_state_dict(tr["optimizer"])
        tracker.load_state_dict(resume["tracker"])
        step, elapsed_before = int(tr["step"]), float(tr["elapsed"])
        gen.set_state(tr["rng"])
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if use_cuda else None, find_unused_parameters=True
        )

    meta_base = {"init": str(init) if init is not None else (resume or {}).get("meta", {}).get("init"),
                 "data": [str(p) for p in data], "files": corpus.files, "data_seconds": corpus.seconds,
                 "sample_rates": list(corpus.rates), "world_size": world}

    def save(last_record: dict[str, Any]) -> None:
        if rank != 0:
            return
        training = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "elapsed": elapsed_before + (time.time() - t_start), "rng": gen.get_state()}
        meta = {**meta_base, "steps": step, "train_seconds": training["elapsed"], "last": last_record}
        atomic_save(make_checkpoint(cfg, ema.state_dict(), tracker, meta, training), latest)

    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(to_toml(cfg))
        if not quiet:
            n = model.num_parameters()
            print(f"model: {n / 1e6:.2f}M parameters, receptive field {model.receptive_field()} samples; "
                  f"data: {corpus.files} files, {corpus.seconds / 60:.1f} min, rates {list(corpus.rates)}; "
                  f"device {device}, world {world}; starting at step {step}", file=sys.stderr)
    val_crops = val_corpus.fixed_crops(cfg.train.val_crops, cfg.data.crop) if val_corpus else None
    log = open(run_dir / "log.jsonl", "a") if rank == 0 else None
    bar = tqdm(total=cfg.train.max_steps, initial=step, disable=quiet or rank != 0 or not sys.stderr.isatty(),
               desc="train", unit="step")
    t_start = time.time()
    record: dict[str, Any] = {"step": step}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_cuda else nullcontext()
    window_loss, window_n, t_window = 0.0, 0, time.time()
    stop_requested = _stop_on_signals() if rank == 0 else {"signal": None}
    while step < cfg.train.max_steps:
        elapsed_min = (elapsed_before + time.time() - t_start) / 60
        stop = torch.tensor(float((max_minutes is not None and elapsed_min >= max_minutes)
                                  or stop_requested["signal"] is not None))
        if world > 1:
            dist.all_reduce(stop, op=dist.ReduceOp.MAX)
        if stop.item() > 0:
            break
        progress = max(step / cfg.train.max_steps, elapsed_min / max_minutes if max_minutes else 0.0)
        lr = lr_at(cfg, progress, step)
        for group in opt.param_groups:
            group["lr"] = lr
        u = corpus.crops(cfg.train.batch_size, cfg.data.crop, gen).to(device)
        with autocast:
            out = ardm.training_elbo(net, u, maps, cfg.ardm.known_bits, gen, cfg.ardm.stage_draw,
                                     cfg.ardm.t_zero_share, cfg.ardm.interval_share)
        loss = out["elbo"].mean() + cfg.ardm.ce_weight * out["ce"].mean()
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {step}; lower train.lr or check the data")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        with torch.no_grad():  # EMA with warm-up: early on the average must not sit at the init
            decay = min(cfg.train.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        tracker.update(out["stage"], out["t_over_d"], out["step_loss"])
        step += 1
        bar.update(1)
        window_loss += float(out["elbo"].detach().mean())
        window_n += 1
        if rank == 0 and (step % cfg.train.log_every == 0 or step == cfg.train.max_steps):
            dt = time.time() - t_window
            record = {"step": step, "bpd": window_loss / window_n, "lr": lr, "grad_norm": float(gnorm),
                      "samples_per_s": window_n * cfg.train.batch_size * cfg.data.crop * world / max(dt, 1e-9),
                      "elapsed_s": elapsed_before + time.time() - t_start}
            window_loss, window_n, t_window = 0.0, 0, time.time()
            if val_crops is not None and (step % cfg.train.val_every == 0):
                record["val_bpd"] = validate(ema, val_crops, cfg, cfg.train.val_passes, device)
            assert log is not None
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.set_postfix(bpd=f"{record['bpd']:.3f}")
            if not quiet and not sys.stderr.isatty():
                print(json.dumps(record), file=sys.stderr)
        if step % cfg.train.ckpt_every == 0:
            save(record)
    bar.close()
    if rank == 0:
        if window_n:  # steps since the last log line
            dt = time.time() - t_window
            record = {"step": step, "bpd": window_loss / window_n, "lr": lr_at(cfg, 1.0, step),
                      "samples_per_s": window_n * cfg.train.batch_size * cfg.data.crop * world / max(dt, 1e-9),
                      "elapsed_s": elapsed_before + time.time() - t_start}
        record = {**record, "step": step, "final": True}
        if val_crops is not None:
            record["val_bpd"] = validate(ema, val_crops, cfg, cfg.train.val_passes, device)
        assert log is not None
        log.write(json.dumps(record) + "\n")
    save(record)
    if log:
        log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return record
