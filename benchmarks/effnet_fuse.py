"""The fused effnet-lite0 (BN folded into the convolutions, symmetric paddings folded, in-place
ReLU6; fewgan.metrics.features.fuse_for_inference) against the plain one: largest feature and
probability differences on 200 emoji faces, then their feature time side by side, alternating.

    python benchmarks/effnet_fuse.py
"""
import time, torch
torch.manual_seed(0)
from fewgan.metrics.features import EffNetLite0Backbone, extract
from fewgan.data import load_images
x = load_images("emoji", 32).x[:200]
a, b = EffNetLite0Backbone(fuse=False), EffNetLite0Backbone(fuse=True)
fa, pa = extract(a, x); fb, pb = extract(b, x)
print("max |feat diff|", float((fa-fb).abs().max()), "feat scale", float(fa.abs().max()), "max |prob diff|", float((pa-pb).abs().max()))
for r in range(2):
    for name, m in (("plain", a), ("fused", b)):
        t=time.perf_counter(); extract(m, x); print(name, round(time.perf_counter()-t, 2), "s / 200 images", flush=True)
