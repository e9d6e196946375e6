"""Image folders for fine-tunes: archives, class scan, one-time decode, split, augmentation."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from bench.core.errors import BenchError
from bench.core.io import escape_unencodable
from bench.core.values import human_count
from bench.train.archive import safe_extract
from bench.train.datasets import ARCHIVE_SUFFIXES, FLOWERS_URL, Dataset, datasets_cache, locate_data
from bench.train.options import TrainOptions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
BOMB = "bomb"


@dataclass(frozen=True)
class ImageSet:
    """Decoded images (uint8, N x 3 x S x S) with their labels and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    skipped: int


def is_archive(path: Path) -> bool:
    """True when the path names a .tar / .tgz / .tar.gz file."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def cache_root() -> Path:
    """The folder where archives are unpacked (~/.cache/bench/data)."""
    return Path.home() / ".cache" / "bench" / "data"


def resolve_data_root(data: str | Path, cache: Path | None = None) -> Path:
    """Turn a folder or archive into the image-folder root (archives unpacked once into cache)."""
    path = Path(data).expanduser()
    if not path.exists():
        raise BenchError(f"data {str(data)!r} does not exist (a folder or a .tar/.tgz archive)")
    if path.is_file():
        if not is_archive(path):
            raise BenchError(f"data {str(data)!r} is a file but not a .tar/.tgz/.tar.gz archive")
        stat = path.stat()
        key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        dest = (cache or cache_root()) / f"{path.name.split('.')[0]}-{key.hexdigest()[:12]}"
        if not (dest / ".complete").exists():
            shutil.rmtree(dest, ignore_errors=True)  # what a killed extraction left
            safe_extract(path, dest)
            (dest / ".complete").write_text("ok\n")
        path = dest
    return _descend(path)


def _descend(path: Path) -> Path:
    """Step into single wrapper folders (e.g. `flowers/`) that hold further folders."""
    while True:
        children = _visible(path)
        if len(children) != 1 or not children[0].is_dir():
            return path
        if not any(p.is_dir() for p in _visible(children[0])):
            return path
        path = children[0]


def _visible(path: Path) -> list[Path]:
    """Children of a folder without hidden entries, sorted by name."""
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def is_presplit(root: Path) -> bool:
    """True when root holds train/ and val/ subfolders."""
    return (root / "train").is_dir() and (root / "val").is_dir()


def scan_classes(root: Path) -> dict[str, list[Path]]:
    """Map class name -> sorted file list; stops on fewer than two classes or an empty class."""
    classes = {  # a folder name that is not UTF-8 is kept with its odd bytes escaped
        escape_unencodable(p.name): sorted(f for f in p.rglob("*") if f.is_file())
        for p in _visible(root)
        if p.is_dir()
    }
    if len(classes) < 2:
        found = ", ".join(classes) or "none"
        raise BenchError(
            f"{root}: needs at least two class folders, found {len(classes)} ({found})"
        )
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise BenchError(f"{root}: class folder(s) {', '.join(empty)} hold no files")
    return classes


def load_image(path: Path, size: int) -> torch.Tensor | None:
    """Decode one file to a uint8 3 x size x size tensor (short side resized, centre square).

    None when the file is not a readable image; decompression bombs (more pixels than PIL's
    `Image.MAX_IMAGE_PIXELS`, 89.5 M by default) count as unreadable, without PIL's warning.
    """
    with bombs_refused():
        return decode_image(path, size)[0]


@contextmanager
def bombs_refused() -> Iterator[None]:
    """Inside: PIL's decompression-bomb warning is an error (which `decode_image` catches).

    Set on the calling thread, it holds for the decoding threads it waits for as well.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def decode_image(path: Path, size: int) -> tuple[torch.Tensor | None, str]:
    """(image, "") or (None, why): `bomb` or `unreadable`. Use inside `bombs_refused()`."""
    try:
        with Image.open(path) as img:
            img = _to_rgb(img)
            img = _square(img, size)
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, BOMB
    except Exception:  # UnidentifiedImageError, OSError, ...: a bad file can raise anything
        return None, "unreadable"
    return data.view(size, size, 3).permute(2, 0, 1).contiguous(), ""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert grayscale, palette and RGBA (composited on white) images to RGB."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _square(img: Image.Image, size: int) -> Image.Image:
    """Resize the short side to size and take the centre square."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def decode_folder(classes: dict[str, list[Path]], size: int, workers: int = 2) -> ImageSet:
    """Decode every file once into memory; unreadable files are skipped with one warning."""
    names = tuple(classes)
    items = [(path, label) for label, name in enumerate(names) for path in classes[name]]
    with bombs_refused(), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = list(pool.map(lambda item: decode_image(item[0], size), items))
    keep = [
        (img, label) for (img, _), (_, label) in zip(decoded, items, strict=True) if img is not None
    ]
    skipped = len(items) - len(keep)
    if skipped:
        bombs = sum(why == BOMB for _, why in decoded)
        warnings.warn(_skipped_message(skipped, bombs), stacklevel=2)
    counts = torch.bincount(
        torch.tensor([label for _, label in keep], dtype=torch.long), minlength=len(names)
    )
    if (counts == 0).any():
        empty = [n for n, c in zip(names, counts.tolist(), strict=True) if c == 0]
        raise BenchError(f"class folder(s) {', '.join(empty)} hold no readable images")
    images = torch.stack([img for img, _ in keep])
    labels = torch.tensor([label for _, label in keep], dtype=torch.long)
    return ImageSet(images, labels, names, skipped)


def _skipped_message(skipped: int, bombs: int) -> str:
    """The one warning about the files decode_folder skipped."""
    text = f"skipped {skipped} unreadable or non-image file(s)"
    if bombs:
        limit = human_count(Image.MAX_IMAGE_PIXELS or 0)
        text += f", {bombs} of them over the decompression-bomb limit of {limit} pixels"
    return text


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[list, list]:
    """Hold out `fraction` of every class (at least one image each) with a seeded shuffle."""
    gen = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in range(int(labels.max()) + 1):
        idx = torch.nonzero(labels == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)].tolist()
        n_val = min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


def random_resized_boxes(
    n: int, size: int, scale: tuple[float, float], gen: torch.Generator
) -> torch.Tensor:
    """Sample n RandomResizedCrop boxes (x1, y1, x2, y2) inside a size x size image."""
    area = size * size * torch.empty(n).uniform_(scale[0], scale[1], generator=gen)
    log_ratio = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)
    ratio = torch.exp(log_ratio)
    w = torch.sqrt(area * ratio).clamp(max=size)
    h = torch.sqrt(area / ratio).clamp(max=size)
    x1 = torch.rand(n, generator=gen) * (size - w)
    y1 = torch.rand(n, generator=gen) * (size - h)
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=1)


def augment_batch(
    images: torch.Tensor, out_size: int, scale: tuple[float, float], gen: torch.Generator
) -> torch.Tensor:
    """Random-resized-crop + horizontal flip + ImageNet normalisation of a uint8 batch."""
    from torchvision.ops import roi_align  # lazy: seconds to import, and only training needs it

    n, _, size, _ = images.shape
    boxes = random_resized_boxes(n, size, scale, gen)
    rois = torch.cat([torch.arange(n, dtype=torch.float32)[:, None], boxes], dim=1)
    x = roi_align(
        images.float(),
        rois,
        output_size=out_size,
        spatial_scale=1.0,
        sampling_ratio=2,
        aligned=True,
    )
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return normalize(x)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Scale 0..255 floats to ImageNet-normalised values."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    return (x - mean) / std


def eval_batch(images: torch.Tensor, image_size: int, resize: int) -> torch.Tensor:
    """Validation transform of a uint8 batch: resize to `resize`, centre-crop `image_size`."""
    x = images.float()
    if x.shape[-1] != resize:
        x = F.interpolate(
            x, size=(resize, resize), mode="bilinear", antialias=True, align_corners=False
        )
    top = (resize - image_size) // 2
    return normalize(x[..., top : top + image_size, top : top + image_size])


def download(url: str, target: Path, timeout: float) -> Path:
    """Fetch url to target with urllib; offline, one line naming the URL to fetch by hand."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise BenchError(
            f"cannot download {url} ({reason}); fetch it by hand and use "
            "`bench data flowers --from FILE`"
        ) from None
    os.replace(tmp, target)
    return target


def fetch_flowers(
    dest: Path, source: Path | None = None, url: str = FLOWERS_URL, timeout: float = 30.0
) -> Path:
    """Unpack a local archive (source) or the downloaded flower_photos into dest; return root."""
    if source is not None:
        if not is_archive(source):
            raise BenchError(f"--from {str(source)!r} is not a .tar/.tgz/.tar.gz file")
        archive = source
    else:
        archive = download(url, dest / ".download" / url.rsplit("/", 1)[-1], timeout)
    safe_extract(archive, dest)
    return _descend(dest)


def install_dataset(dataset: Dataset, source: Path | None, timeout: float = 30.0) -> Path:
    """Fill the cache's folder of a named data set (download, or unpack `source`); its root.

    Unpacked beside the cache folder and moved in when complete: a killed fetch leaves no
    half data set that suites would find.
    """
    target = datasets_cache() / dataset.name
    partial = target.with_name(f".{dataset.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    fetch_flowers(partial, source, dataset.url, timeout)
    shutil.rmtree(partial / ".download", ignore_errors=True)  # the archive, now unpacked
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return _descend(target)


@dataclass
class Prepared:
    """The decoded training and validation images, ready to index."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]
    skipped: int
    root: Path


def prepare_data(source: str, options: TrainOptions) -> Prepared:
    """Find the image folder, decode every image once, split train/val (stratified, seeded)."""
    root = resolve_data_root(locate_data(source))
    store = max((options.image_size, *options.progressive))
    if is_presplit(root):
        train = decode_folder(scan_classes(root / "train"), store, options.workers)
        val = decode_folder(scan_classes(root / "val"), store, options.workers)
        if val.classes != train.classes:
            raise BenchError(f"{root}: train/ and val/ hold different class folders")
        return Prepared(
            train.images,
            train.labels,
            val.images,
            val.labels,
            train.classes,
            train.skipped + val.skipped,
            root,
        )
    full = decode_folder(scan_classes(root), store, options.workers)
    tr, va = stratified_split(full.labels, options.val_fraction, options.split_seed)
    return Prepared(
        full.images[tr],
        full.labels[tr],
        full.images[va],
        full.labels[va],
        full.classes,
        full.skipped,
        root,
    )
