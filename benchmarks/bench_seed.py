"""The seed preset's cost against a plain PyTorch implementation of the same network, side by side.

The plain version is PyTorch-GAN's context encoder as written there (one nn.Sequential generator, the
full 4000->512 transposed convolution, the discriminator's weights getting gradients from the
generator loss, default memory format); ssrbench's is what `--preset seed` trains (the same function:
only the 4 live taps of that convolution, no discriminator weight gradients from L_G, channels-last).
Both do the same steps on the same batches here, in one process; printed as seconds per step, per
epoch of 50,000 images, and the ratio plain / ssrbench. The issue's reference timings of a plain
reimplementation on this CPU are printed beside them.

    python benchmarks/bench_seed.py            # ~3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from ssrbench.core.presets import PRESETS
from ssrbench.defense.reverse import reverse_attack
from ssrbench.models.context_encoder import BN_EPS, gan_init_
from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.inpaint import InpaintTask
from ssrbench.run.config import ReverseConfig

REFERENCE_S = {
    "multitask epoch": 207.0,
    "classifier epoch": 30.0,
    "generator-only epoch": 157.0,
    "10-step reversal of 2,000 images": 40.0,
}
TRAIN_IMAGES = 50_000


def plain_pytorch_gan(num_classes: int = 10):
    """PyTorch-GAN's generator and discriminator, verbatim in structure, plus the report's linear classifier."""

    def down(i, o, bn=True):
        return [nn.Conv2d(i, o, 4, 2, 1), *([nn.BatchNorm2d(o, BN_EPS)] if bn else []), nn.LeakyReLU(0.2)]

    def up(i, o):
        return [nn.ConvTranspose2d(i, o, 4, 2, 1), nn.BatchNorm2d(o, BN_EPS), nn.ReLU()]

    enc = nn.Sequential(*down(3, 64, False), *down(64, 64), *down(64, 128), *down(128, 256), *down(256, 512))
    dec = nn.Sequential(
        nn.Conv2d(512, 4000, 1),
        *up(4000, 512),
        *up(512, 256),
        *up(256, 128),
        *up(128, 64),
        nn.Conv2d(64, 3, 3, 1, 1),
        nn.Tanh(),
    )
    d_layers, c = [], 3
    for o, s, norm in ((64, 2, False), (128, 2, True), (256, 2, True), (512, 1, True)):
        d_layers += [nn.Conv2d(c, o, 3, s, 1), *([nn.InstanceNorm2d(o)] if norm else []), nn.LeakyReLU(0.2)]
        c = o
    disc = nn.Sequential(*d_layers, nn.Conv2d(512, 1, 3, 1, 1))
    fc = nn.Linear(512, num_classes)
    for m in (enc, dec, disc):
        gan_init_(m)
    return enc, dec, disc, fc


def _time(fn, reps: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=6, help="timed steps per measurement")
    a = ap.parse_args()
    torch.manual_seed(0)
    bs = PRESETS["seed"].batch_size
    g = torch.Generator().manual_seed(0)
    x = torch.rand(bs, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (bs,), generator=g)
    task = InpaintTask()
    masked, real = task.cut(x, torch.Generator().manual_seed(1))

    # -- plain ------------------------------------------------------------------------------------
    enc, dec, disc, fc = plain_pytorch_gan()
    for m in (enc, dec, disc, fc):
        m.train()
    opt = torch.optim.SGD(list(enc.parameters()) + list(fc.parameters()), lr=0.01, momentum=0.9)
    opt_g = torch.optim.Adam(dec.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-5, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits

    def plain_gan_losses(train_encoder: bool):
        feats = enc(masked * 2 - 1) if train_encoder else enc(masked * 2 - 1).detach()
        fake = dec(feats)
        d_fake = disc(fake)
        loss_g = 0.001 * bce(d_fake, torch.ones_like(d_fake)) + 0.999 * (fake - (real * 2 - 1)).pow(2).mean()
        return fake, loss_g

    def plain_d_step(fake):
        opt_d.zero_grad()
        d_real, d_fake = disc(real * 2 - 1), disc(fake.detach())
        (0.5 * (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake)))).backward()
        opt_d.step()

    def plain_multitask():
        ce = F.cross_entropy(fc(enc(x * 2 - 1).flatten(1)), y)
        fake, loss_g = plain_gan_losses(True)
        opt.zero_grad()
        opt_g.zero_grad()
        (ce + 10 * loss_g).backward()
        opt.step()
        opt_g.step()
        plain_d_step(fake)

    def plain_classifier():
        opt.zero_grad()
        F.cross_entropy(fc(enc(x * 2 - 1).flatten(1)), y).backward()
        opt.step()

    def plain_generator_only():
        fake, loss_g = plain_gan_losses(False)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        plain_d_step(fake)

    def plain_reverse():  # 10 signed-gradient steps on one evaluation batch, model in eval mode
        for m in (enc, dec, disc):
            m.eval()
        z = x[:250].clone()
        for _ in range(10):
            z.requires_grad_(True)
            mz, rz = task.cut(z)
            fake = dec(enc(mz * 2 - 1))
            d = disc(fake)
            loss = 0.001 * bce(d, torch.ones_like(d)) + 0.999 * (fake - (rz * 2 - 1)).pow(2).mean()
            (grad,) = torch.autograd.grad(loss, z)
            z = torch.min(torch.max(z.detach() - 2 / 255 * grad.sign(), x[:250] - 8 / 255), x[:250] + 8 / 255).clamp(
                0, 1
            )
        for m in (enc, dec, disc):
            m.train()

    # -- ssrbench ---------------------------------------------------------------------------------
    model = task.attach(SSRModel("ssr_context_encoder", (0.5,) * 3, (0.5,) * 3, 10)).to(
        memory_format=torch.channels_last
    )
    xc = x.contiguous(memory_format=torch.channels_last)
    heads_g = [p for k, h in model.heads.items() if k != "discriminator" for p in h.parameters()]
    s_opt = torch.optim.SGD(
        list(model.backbone.parameters()) + list(model.classifier.parameters()), lr=0.01, momentum=0.9
    )
    s_opt_g = torch.optim.Adam(heads_g, lr=2e-4, betas=(0.5, 0.999))
    s_opt_d = torch.optim.Adam(model.heads["discriminator"].parameters(), lr=2e-5, betas=(0.5, 0.999))

    def ours_task_step(extra_loss=None):
        tl = task.training_loss(model, xc, torch.Generator().manual_seed(1))
        s_opt.zero_grad()
        s_opt_g.zero_grad()
        (tl.loss * 10 + (extra_loss if extra_loss is not None else 0)).backward()
        s_opt.step()
        s_opt_g.step()
        s_opt_d.zero_grad()
        tl.aux_loss.backward()
        s_opt_d.step()

    def ours_multitask():
        model.train()
        ours_task_step(F.cross_entropy(model(xc), y))

    def ours_classifier():
        model.train()
        s_opt.zero_grad()
        F.cross_entropy(model(xc), y).backward()
        s_opt.step()

    def ours_generator_only():
        model.eval()
        model.heads.train()
        for p in list(model.backbone.parameters()) + list(model.classifier.parameters()):
            p.requires_grad_(False)
        ours_task_step()
        for p in list(model.backbone.parameters()) + list(model.classifier.parameters()):
            p.requires_grad_(True)

    rcfg = ReverseConfig(eps=8 / 255, step_size=2 / 255, steps=10)

    def ours_reverse():
        model.eval()
        reverse_attack(model, task, xc[:250], rcfg)

    steps_per_epoch = TRAIN_IMAGES // bs
    rows = [
        ("multitask epoch", plain_multitask, ours_multitask, steps_per_epoch),
        ("classifier epoch", plain_classifier, ours_classifier, steps_per_epoch),
        ("generator-only epoch", plain_generator_only, ours_generator_only, steps_per_epoch),
        ("10-step reversal of 2,000 images", plain_reverse, ours_reverse, 2000 // 250),
    ]
    print(f"batch {bs}, {torch.get_num_threads()} threads, {a.reps} timed repetitions each\n")
    print(f"{'':36s} {'plain s':>9s} {'ssrbench s':>11s} {'plain/ssrbench':>15s} {'issue reference s':>18s}")
    for name, plain, ours, scale in rows:
        tp, to = _time(plain, a.reps) * scale, _time(ours, a.reps) * scale
        print(f"{name:36s} {tp:9.1f} {to:11.1f} {tp / to:15.2f} {REFERENCE_S[name]:18.0f}")


if __name__ == "__main__":
    main()
