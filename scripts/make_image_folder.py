"""Write a synthetic image folder in the layout `data=image_folder` reads (DIR/train/<class>/*.png and
DIR/test/<class>/*.png): noisy coloured shapes, one kind per class, so that a model has something to learn.
For trying the own-data chain at a size of your choosing, and for the figures in docs/own-data.md:

    python scripts/make_image_folder.py /tmp/folder30k --images 30000 --size 32 --classes 6
    /usr/bin/time -v python -m compress.sweep -m data=image_folder data.path=/tmp/folder30k paths.study=folder30k \
        experiment=smoke
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

COLOURS = [(255, 60, 60), (60, 255, 60), (60, 60, 255), (230, 230, 60), (230, 60, 230), (60, 230, 230),
           (250, 150, 40), (150, 150, 150)]


def draw(k: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One image of class `k`: a shape of its own (disc, rows, square, columns, diagonal, ring, ...) in a
    colour of its own, at a random place, on a dark noisy ground."""
    img = np.zeros((size, size, 3)) + rng.uniform(0, 60, 3)
    colour = np.array(COLOURS[k % len(COLOURS)]) * rng.uniform(0.7, 1.0)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
    r2 = (yy - cy) ** 2 + (xx - cx) ** 2
    shape = [r2 < (size / 5) ** 2, yy % 4 == 0, (abs(yy - cy) < size / 4) & (abs(xx - cx) < size / 4),
             xx % 4 == 0, abs(yy - xx) < 2, (r2 < (size / 3) ** 2) & (r2 > (size / 5) ** 2)][k % 6]
    img[shape] = colour
    return np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (must not exist)")
    parser.add_argument("--images", type=int, default=30_000, help="images in all, a sixth of them test")
    parser.add_argument("--size", type=int, default=32, help="height and width in pixels")
    parser.add_argument("--classes", type=int, default=6)
    args = parser.parse_args()
    from PIL import Image

    if args.out.exists():
        parser.error(f"{args.out} exists: name a new folder")
    rng = np.random.default_rng(0)
    per_class = args.images // args.classes
    n_test = per_class // 6
    for k in range(args.classes):
        for split, n in (("train", per_class - n_test), ("test", n_test)):
            folder = args.out / split / f"class_{k}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(draw(k, args.size, rng)).save(folder / f"{i:05d}.png")
        print(f"class {k + 1} of {args.classes} written", flush=True)
    print(f"wrote {per_class * args.classes:,} images of {args.size}x{args.size}x3 to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
