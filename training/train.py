"""Train the MarioNETte generator by self-reenactment on prepared shards (training.prepare).

    python -m training.train --config lite --data DATA --out RUN [--steps 20000] [--batch 8] [--shots 1]
    torchrun --nproc_per_node 2 -m training.train ...      # several GPUs / processes (DDP)

Each sample: K target frames and one driver frame of the same video; the driver frame is the ground
truth. Each sample gets one random colour change and maybe a horizontal flip, the same on all its
frames (training.augment; --no-augment turns it off). Losses: multi-scale L1, hinge GAN with the
landmark-conditioned projection discriminator, and discriminator feature matching (no perceptual
loss: no VGG weights can be downloaded here). Mixed precision on CUDA, checkpoint + resume
(RUN/checkpoint.pt), fixed seeds, a CSV log and a PNG grid (target | driver landmarks | output |
ground truth) every --sample-every steps. The landmark transformer's expression model is fitted on
the training landmarks and saved beside the weights.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from models.marionette.config import CONFIGS, MarioNETteConfig
from models.marionette.landmark_disentangle import fit_expression_model
from models.marionette.network import MarioNETteGenerator
from models.marionette.rasterize import landmark_image
from models.marionette.runtime import save_generator
from training.augment import augment_sample
from training.discriminator import ProjectionDiscriminator


@dataclass(frozen=True)
class TrainConfig:
    network: str
    data: Path
    out: Path
    steps: int = 20000
    batch: int = 8
    shots: int = 1
    image_size: int | None = None  # default: the network config's
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    gan_weight: float = 0.1
    feature_matching_weight: float = 1.0
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    check_replicas: bool = False
    augment: bool = True  # training.augment: per-sample colour change and horizontal flip


class ShardSampler:
    """Random self-reenactment samples from the training shards."""

    def __init__(self, folder: Path, size: int, shots: int, seed: int, augment: bool = True) -> None:
        paths = sorted(folder.glob("*.npz"))
        if not paths:
            raise FileNotFoundError(f"no shards in {folder}: run python -m training.prepare first")
        self.videos = []
        for path in paths:
            with np.load(path) as shard:
                frames, landmarks = shard["frames"], shard["landmarks"]
            if len(frames) < shots + 1:
                continue
            if frames.shape[1] != size:
                scale = size / frames.shape[1]
                frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
                landmarks = landmarks * scale
            self.videos.append((frames, landmarks.astype(np.float32)))
        if not self.videos:
            raise ValueError(f"no shard in {folder} has {shots + 1} frames")
        self.size, self.shots, self.augment = size, shots, augment
        self.rng = np.random.default_rng(seed)
        weights = np.array([len(v[0]) for v in self.videos], np.float64)
        self.weights = weights / weights.sum()

    def landmarks(self) -> list[np.ndarray]:
        return [landmarks for _, landmarks in self.videos]

    def batch(self, count: int) -> dict[str, torch.Tensor]:
        images, marks = [], []
        for _ in range(count):
            frames, landmarks = self.videos[self.rng.choice(len(self.videos), p=self.weights)]
            picks = self.rng.choice(len(frames), self.shots + 1, replace=False)
            sample_frames, sample_marks = frames[picks], landmarks[picks]
            if self.augment:
                sample_frames, sample_marks = augment_sample(sample_frames, sample_marks, self.rng)
            images.append(sample_frames)
            marks.append(sample_marks)
        pixels = torch.from_numpy(np.stack(images)).permute(0, 1, 4, 2, 3).float() / 127.5 - 1  # (B, K+1, 3, H, W)
        points = torch.from_numpy(np.stack(marks))  # (B, K+1, 68, 2)
        drawn = landmark_image(points.flatten(0, 1), self.size).view(count, self.shots + 1, 3, self.size, self.size)
        return {"target_images": pixels[:, :-1], "target_marks": drawn[:, :-1],
                "driver_marks": drawn[:, -1], "truth": pixels[:, -1]}


def multiscale_l1(output: torch.Tensor, truth: torch.Tensor, scales: int = 3) -> torch.Tensor:
    loss = output.new_zeros(())
    for scale in range(scales):
        if scale:
            output, truth = F.avg_pool2d(output, 2), F.avg_pool2d(truth, 2)
        loss = loss + (output - truth).abs().mean()
    return loss / scales


def _grid(batch: dict[str, torch.Tensor], output: torch.Tensor, path: Path) -> None:
    rows = []
    for i in range(min(4, output.shape[0])):
        tiles = [batch["target_images"][i, 0], batch["driver_marks"][i], output[i].detach().float(), batch["truth"][i]]
        rows.append(torch.cat([t.cpu() for t in tiles], dim=2))
    image = ((torch.cat(rows, dim=1).permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _state_hash(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for tensor in module.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train(config: TrainConfig) -> dict:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed:
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    network: MarioNETteConfig = CONFIGS[config.network]
    if config.image_size:
        network = dataclasses.replace(network, image_size=config.image_size)
    generator = MarioNETteGenerator(network).to(device)
    discriminator = ProjectionDiscriminator(network).to(device)
    optimiser_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=(0.5, 0.999))
    optimiser_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=(0.5, 0.999))
    checkpoint_path, step = config.out / "checkpoint.pt", 0
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        optimiser_g.load_state_dict(state["optimiser_g"])
        optimiser_d.load_state_dict(state["optimiser_d"])
        step = state["step"]
    g, d = generator, discriminator
    if distributed:
        g, d = DistributedDataParallel(generator), DistributedDataParallel(discriminator)
    sampler = ShardSampler(config.data / "train", network.image_size, config.shots, config.seed + 1000 * rank + step,
                           config.augment)
    if rank == 0:
        config.out.mkdir(parents=True, exist_ok=True)
        fit_expression_model(sampler.landmarks(), components=min(12, 2 * len(sampler.videos) + 4)).save(
            config.out / "expression.npz")
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    log_path = config.out / "log.csv"
    started = time.perf_counter()
    while step < config.steps:
        batch = {k: v.to(device) for k, v in sampler.batch(config.batch).items()}
        with torch.autocast("cuda", enabled=use_amp):
            output = g(batch["driver_marks"], batch["target_images"], batch["target_marks"])
            real_score, _ = d(batch["truth"], batch["driver_marks"])
            fake_score, _ = d(output.detach(), batch["driver_marks"])
            loss_d = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
        optimiser_d.zero_grad(set_to_none=True)
        scaler.scale(loss_d).backward()
        scaler.step(optimiser_d)
        with torch.autocast("cuda", enabled=use_amp):
            fake_score, fake_features = d(output, batch["driver_marks"])
            _, real_features = d(batch["truth"], batch["driver_marks"])
            loss_l1 = multiscale_l1(output, batch["truth"])
            loss_fm = sum((f - r.detach()).abs().mean() for f, r in zip(fake_features, real_features, strict=True))
            loss_g = loss_l1 - config.gan_weight * fake_score.mean() + config.feature_matching_weight * loss_fm
        optimiser_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(optimiser_g)
        scaler.update()
        step += 1
        if rank == 0 and (step % config.log_every == 0 or step == config.steps):
            new = not log_path.exists()
            with open(log_path, "a", newline="") as log:
                writer = csv.writer(log)
                if new:
                    writer.writerow(["step", "seconds", "loss_l1", "loss_g", "loss_d", "loss_fm"])
                writer.writerow([step, round(time.perf_counter() - started, 2), f"{loss_l1.item():.5f}",
                                 f"{loss_g.item():.5f}", f"{loss_d.item():.5f}", f"{loss_fm.item():.5f}"])
            print(f"step {step}/{config.steps} l1 {loss_l1.item():.4f} d {loss_d.item():.4f}", file=sys.stderr)
        if rank == 0 and step % config.sample_every == 0:
            _grid(batch, output, config.out / "samples" / f"step_{step:06d}.png")
        if rank == 0 and (step % config.checkpoint_every == 0 or step == config.steps):
            torch.save({"generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
                        "optimiser_g": optimiser_g.state_dict(), "optimiser_d": optimiser_d.state_dict(),
                        "step": step, "config": network.name}, checkpoint_path)
            save_generator(generator, config.out / "generator.pt", step=step, image_size=network.image_size)
    result = {"steps": step, "rank": rank, "generator_hash": _state_hash(generator)}
    if distributed:
        hashes: list[str | None] = [None] * dist.get_world_size()
        dist.all_gather_object(hashes, result["generator_hash"])
        result["replicas_identical"] = len(set(hashes)) == 1
        if config.check_replicas and rank == 0:
            (config.out / "replicas.json").write_text(f'{{"identical": {str(result["replicas_identical"]).lower()}, '
                                                      f'"hashes": {len(hashes)}}}')
        _shut_down_process_group()
    return result


def _shut_down_process_group() -> None:
    """Tear gloo down in step: a rank that destroyed its group while the other still had a collective in
    flight (rank 0 writing replicas.json after the gather) aborted at exit ("terminate called without an
    active exception", 1 run in 5)."""
    dist.barrier()  # no rank leaves while another still talks to it
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(CONFIGS), default="lite", help="network config")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder from training.prepare")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumes if it has a checkpoint)")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=8, help="per process")
    parser.add_argument("--shots", type=int, default=1, help="target frames per sample (K)")
    parser.add_argument("--image-size", type=int, default=None, help="train at another resolution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--sample-every", type=int, default=200)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--check-replicas", action="store_true", help="DDP: record whether replicas match")
    parser.add_argument("--no-augment", action="store_true",
                        help="train on the frames as they are (default: per-sample colour change and flip)")
    args = parser.parse_args(argv)
    result = train(TrainConfig(args.config, args.data, args.out, args.steps, args.batch, args.shots, args.image_size,
                               seed=args.seed, log_every=args.log_every, sample_every=args.sample_every,
                               checkpoint_every=args.checkpoint_every, check_replicas=args.check_replicas,
                               augment=not args.no_augment))
    if result["rank"] == 0:
        print(f"trained to step {result['steps']}: {args.out / 'generator.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
