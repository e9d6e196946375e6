"""Flower data: archive safety, class scan, bad files, colour conversion, split, augmentation."""

from __future__ import annotations

import io
import tarfile
import urllib.error
import warnings
from pathlib import Path

import pytest
import torch
from fixtures.flowers import extract_subset, needs_archive
from PIL import Image
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.train import data as imgdata


def write_image(path: Path, mode: str, size: int = 40) -> None:
    """Save a small synthetic image in the given PIL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = {"L": 128, "RGBA": (255, 0, 0, 0), "RGB": (0, 200, 0), "P": 3}[mode]
    Image.new(mode, (size, size + 10), colour).save(path)


def test_grayscale_and_rgba_become_rgb(tmp_path: Path) -> None:
    write_image(tmp_path / "gray.png", "L")
    write_image(tmp_path / "rgba.png", "RGBA")
    gray = imgdata.load_image(tmp_path / "gray.png", 32)
    rgba = imgdata.load_image(tmp_path / "rgba.png", 32)
    assert gray.shape == rgba.shape == (3, 32, 32)
    assert gray.dtype == torch.uint8
    assert torch.all(gray == 128)
    assert torch.all(rgba == 255)  # fully transparent red composited on white


def test_corrupt_and_non_image_files_skipped_with_one_warning(tmp_path: Path) -> None:
    for i in range(3):
        write_image(tmp_path / "a" / f"{i}.jpg", "RGB")
        write_image(tmp_path / "b" / f"{i}.png", "L")
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "b" / "notes.txt").write_text("hello")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = imgdata.decode_folder(imgdata.scan_classes(tmp_path), 24)
    assert images.skipped == 2
    assert [str(w.message) for w in caught] == ["skipped 2 unreadable or non-image file(s)"]
    assert images.images.shape == (6, 3, 24, 24)
    assert images.classes == ("a", "b")
    assert images.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_fewer_than_two_classes_and_empty_class_stop(tmp_path: Path) -> None:
    write_image(tmp_path / "only" / "x.png", "RGB")
    with pytest.raises(BenchError, match="at least two class folders, found 1"):
        imgdata.scan_classes(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="empty hold no files"):
        imgdata.scan_classes(tmp_path)
    (tmp_path / "empty" / "junk.txt").write_text("x")
    with (
        pytest.raises(BenchError, match="empty hold no readable images"),
        pytest.warns(UserWarning, match="skipped 1"),
    ):
        imgdata.decode_folder(imgdata.scan_classes(tmp_path), 16)


def test_stratified_split_is_seeded_and_per_class() -> None:
    labels = torch.tensor([0] * 20 + [1] * 10 + [2] * 3)
    train, val = imgdata.stratified_split(labels, 0.1, seed=0)
    again = imgdata.stratified_split(labels, 0.1, seed=0)
    other = imgdata.stratified_split(labels, 0.1, seed=1)
    assert (train, val) == again
    assert other != (train, val)
    assert sorted(train + val) == list(range(33))
    assert torch.bincount(labels[val]).tolist() == [2, 1, 1]


def test_augment_batch_shapes_flip_and_determinism() -> None:
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    a = imgdata.augment_batch(images, 24, (0.5, 1.0), torch.Generator().manual_seed(0))
    b = imgdata.augment_batch(images, 24, (0.5, 1.0), torch.Generator().manual_seed(0))
    assert a.shape == (4, 3, 24, 24)
    assert torch.equal(a, b)
    boxes = imgdata.random_resized_boxes(500, 32, (0.25, 1.0), torch.Generator().manual_seed(1))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 32**2
    assert boxes.min() >= 0 and boxes.max() <= 32
    assert area.max() <= 1.0 + 1e-6 and area.min() >= 0.25 * 0.75
    flat = torch.full((2, 3, 32, 32), 100, dtype=torch.uint8)
    out = imgdata.augment_batch(flat, 16, (0.25, 1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(out, imgdata.normalize(torch.full((2, 3, 16, 16), 100.0)), atol=1e-4)


def _tar_with(path: Path, name: str) -> Path:
    """A tar archive holding one member with the given name."""
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    return path


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_safe_extract_refuses_escaping_members(tmp_path: Path, member: str) -> None:
    archive = _tar_with(tmp_path / "bad.tar", member)
    with pytest.raises(BenchError, match="unsafe member"):
        imgdata.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_resolve_data_root_descends_into_wrapper_folder(tmp_path: Path) -> None:
    for cls in ("x", "y"):
        write_image(tmp_path / "src" / "wrap" / cls / "0.png", "RGB")
    archive = tmp_path / "set.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "src" / "wrap", arcname="wrap")
    root = imgdata.resolve_data_root(archive, cache=tmp_path / "cache")
    assert sorted(p.name for p in root.iterdir()) == ["x", "y"]
    assert imgdata.resolve_data_root(archive, cache=tmp_path / "cache") == root
    with pytest.raises(BenchError, match="does not exist"):
        imgdata.resolve_data_root(tmp_path / "missing")


def test_data_flowers_offline_prints_one_line_with_url(monkeypatch, tmp_path: Path) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(imgdata.urllib.request, "urlopen", offline)
    result = CliRunner().invoke(app, ["data", "flowers", "--dest", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.count("error:") == 1
    assert imgdata.FLOWERS_URL in result.output.replace("\n", "")
    assert "Traceback" not in result.output


@needs_archive
def test_data_flowers_from_local_archive(tmp_path: Path) -> None:
    subset = extract_subset(tmp_path / "src" / "flowers", per_class=2)
    archive = tmp_path / "small.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(subset, arcname="flowers")
    result = CliRunner().invoke(
        app, ["data", "flowers", "--dest", str(tmp_path / "out"), "--from", str(archive)]
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out" / "flowers").glob("*/*.jpg"))) == 6
