"""A scan-like test image whose bytes are distinctive (random pixels do not compress)."""

from __future__ import annotations

import io
import random

from PIL import Image


def noisy_png(seed: int = 11) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (64, 64), bytes(rng.randrange(256) for _ in range(64 * 64 * 3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
