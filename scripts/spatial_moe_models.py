"""The block-routed x4 upsampler of SPEC.md use case 2, written three ways as users export it.

A router CNN looks at the low-resolution image and scores, for every 8x8 block, 8 expert CNNs; each
expert (conv3x3 1->16, ReLU, conv3x3 16->16, ReLU, conv3x3 16->16, PixelShuffle(4)) turns the image into a
x4 one. The block's output comes from its top-1 expert (or the softmax-weighted top-2).

  DenseUpsampler      (a) every expert on the whole image, then a per-block mask upsampled to pixels:
                          out = sum_e mask_e * expert_e(img)  (what exports most easily)
  BlockBatchUpsampler (b) blocks cut out with their halo as a batch [blocks, 1, 8+2h, 8+2h], token-style
                          dispatch (nonzero / index / index_put), centre crops put back in place
  NativeUpsampler     (c) one ai.switchyard::SpatialMoE node, exported by spatial_moe_export()

All three compute the same function: the dense model's zero padding at the image border is reproduced in
(b) by zeroing every layer's activations outside the image.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

BLOCK = 8
SCALE = 4
EXPERTS = 8
HIDDEN = 16


class ExpertCNN(nn.Module):
    def __init__(self, hidden=HIDDEN, scale=SCALE):
        super().__init__()
        self.conv1 = nn.Conv2d(1, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv3 = nn.Conv2d(hidden, scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))


class Router(nn.Module):
    """Features of the low-resolution image pooled per block -> one logit per expert and block."""

    def __init__(self, experts=EXPERTS, hidden=HIDDEN, block=BLOCK):
        super().__init__()
        self.conv = nn.Conv2d(1, hidden, 3, padding=1)
        self.pool = nn.AvgPool2d(block)
        self.fc1 = nn.Conv2d(hidden, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, experts, 1)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(self.pool(F.relu(self.conv(x))))))


def block_weights(logits, k: int):
    """[N, E, Hb, Wb] combine weights: one-hot of the argmax (k=1) or softmax over the top-k logits."""
    if k == 1:
        return F.one_hot(logits.argmax(1), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    vals, idx = logits.topk(k, dim=1)
    return torch.zeros_like(logits).scatter(1, idx, torch.softmax(vals, dim=1))


class UpsamplerBase(nn.Module):
    def __init__(self, k=1):
        super().__init__()
        self.k = k
        self.router = Router()
        self.experts = nn.ModuleList([ExpertCNN() for _ in range(EXPERTS)])


class DenseUpsampler(UpsamplerBase):
    def forward(self, x):
        w = block_weights(self.router(x), self.k)
        mask = F.interpolate(w, scale_factor=float(BLOCK * SCALE), mode="nearest")
        out = mask[:, 0:1] * self.experts[0](x)
        for e in range(1, EXPERTS):
            out = out + mask[:, e:e + 1] * self.experts[e](x)
        return out


class BlockBatchUpsampler(UpsamplerBase):
    HALO = 3  # one pixel per 3x3 convolution of an expert

    def forward(self, x):
        n, c, h, w = x.shape
        hb, wb = h // BLOCK, w // BLOCK
        halo, size = self.HALO, BLOCK + 2 * self.HALO
        weights = block_weights(self.router(x), self.k)  # [N, E, Hb, Wb]
        # Blocks with their halo as a batch; `inside` is 1 where a patch pixel lies in the image.
        def cut(t):
            cols = F.unfold(t, size, padding=halo, stride=BLOCK)  # [N, C size size, Hb Wb]
            return cols.transpose(1, 2).reshape(n * hb * wb, t.shape[1], size, size)
        patches = cut(x)
        inside = cut(torch.ones_like(x[:, :1]))
        flat_w = weights.permute(0, 2, 3, 1).reshape(n * hb * wb, EXPERTS)
        out = torch.zeros(n * hb * wb, 1, BLOCK * SCALE, BLOCK * SCALE, dtype=x.dtype)
        for e, expert in enumerate(self.experts):
            sel = torch.nonzero(flat_w[:, e] > 0).squeeze(1)
            p, m = patches[sel], inside[sel]
            y = F.relu(expert.conv1(p)) * m
            y = F.relu(expert.conv2(y)) * m
            y = expert.conv3(y)[:, :, halo:halo + BLOCK, halo:halo + BLOCK]
            y = expert.shuffle(y) * flat_w[sel, e].reshape(-1, 1, 1, 1)
            out = out.index_add(0, sel, y)
        out = out.reshape(n, hb, wb, BLOCK * SCALE, BLOCK * SCALE).permute(0, 1, 3, 2, 4)
        return out.reshape(n, 1, h * SCALE, w * SCALE)


class _SpatialMoEFunction(torch.autograd.Function):
    """Runs a dense reference in PyTorch; exports as one ai.switchyard::SpatialMoE node."""

    @staticmethod
    def forward(ctx, x, logits, k, block, scale, *params):
        w = block_weights(logits, k)
        mask = F.interpolate(w, scale_factor=float(block * scale), mode="nearest")
        out = torch.zeros(x.shape[0], 1, x.shape[2] * scale, x.shape[3] * scale)
        layers = len(params) // 2
        for e in range(logits.shape[1]):
            y = x
            for l in range(layers):
                y = F.conv2d(y, params[2 * l][e], params[2 * l + 1][e], padding="same")
                if l + 1 < layers:
                    y = F.relu(y)
            out = out + mask[:, e:e + 1] * F.pixel_shuffle(y, scale)
        return out

    @staticmethod
    def symbolic(g, x, logits, k, block, scale, *params):
        return g.op("ai.switchyard::SpatialMoE", x, logits, *params, k_i=k, block_size_i=block, upscale_i=scale,
                    activation_s="relu")


def spatial_moe(x, logits, k, block, scale, stacked_params):
    """out = sum over each block's top-k experts of weight * expert(x), the experts being conv stacks given as
    stacked parameters [W_0 [E, C1, C0, kh, kw], B_0 [E, C1], W_1, B_1, ...] with ReLU between the convolutions
    and a PixelShuffle(scale) head. Exports as ai.switchyard::SpatialMoE (the helper of issue 14)."""
    return _SpatialMoEFunction.apply(x, logits, k, block, scale, *stacked_params)


class NativeUpsampler(UpsamplerBase):
    def stacked(self):
        out = []
        for name in ("conv1", "conv2", "conv3"):
            out.append(torch.stack([getattr(e, name).weight for e in self.experts]))
            out.append(torch.stack([getattr(e, name).bias for e in self.experts]))
        return out

    def forward(self, x):
        return spatial_moe(x, self.router(x), self.k, BLOCK, SCALE, self.stacked())


FORMS = {"dense": DenseUpsampler, "blocks": BlockBatchUpsampler, "native": NativeUpsampler}
