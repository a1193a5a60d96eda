"""Upscales a picture x4 with the block-routed MoE upsampler (models/spatial_moe), the Python way.

    PYTHONPATH=build/python python3 examples/python/upscale_image.py examples/images/fashion_lr.png out.png

The same from the CLI, with a picture of which expert each 8x8 block went to:

    build/switchyard run models/spatial_moe/upsampler_x4_dense.onnx --image examples/images/fashion_lr.png \
        --output-image out.png --expert-map map.png --expert-stats
"""
import os
import sys

import numpy as np
from PIL import Image

import switchyard

MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "models", "spatial_moe", "upsampler_x4_dense.onnx")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    session = switchyard.InferenceSession(MODEL, threads=2)
    # The dense "every expert, then mask" export is fused into one sparse SpatialMoE layer at load.
    print("\n".join(n for n in session.compile_notes if "spatial MoE" in n))
    low = np.asarray(Image.open(src).convert("L"), dtype=np.float32)[None, None] / 255.0
    (high,) = session.run(None, {"image": low})
    Image.fromarray((np.clip(high[0, 0], 0, 1) * 255 + 0.5).astype(np.uint8), mode="L").save(dst)
    print(f"{src} {low.shape[3]}x{low.shape[2]} -> {dst} {high.shape[3]}x{high.shape[2]}")


if __name__ == "__main__":
    main()
