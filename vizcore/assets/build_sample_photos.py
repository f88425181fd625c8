"""Rebuild vizcore/assets/photos/ from scikit-image's sample images (see README.md here).

pip download --no-deps scikit-image==0.25.2 -d /tmp/skw
python vizcore/assets/build_sample_photos.py /tmp/skw/scikit_image-0.25.2-*.whl
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

from PIL import Image

PHOTOS = {"chelsea": "chelsea.png", "coffee": "coffee.png", "astronaut": "astronaut.png", "rocket": "rocket.jpg"}
SHORT_SIDE = 224
OUT = Path(__file__).with_name("photos")


def main(wheel: str) -> None:
    OUT.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name, member in PHOTOS.items():
            image = Image.open(io.BytesIO(zf.read(f"skimage/data/{member}"))).convert("RGB")
            w, h = image.size
            scale = SHORT_SIDE / min(w, h)
            image = image.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
            tmp = OUT / f".{name}.jpg.tmp"
            image.save(tmp, format="JPEG", quality=90, optimize=True)
            tmp.replace(OUT / f"{name}.jpg")  # atomic
            print(name, image.size)


if __name__ == "__main__":
    main(sys.argv[1])
