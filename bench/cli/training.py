"""`bench predict` (classify images with a fine-tune checkpoint) and `bench data flowers`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bench.cli.common import JsonFlag, print_json, stderr, stdout
from bench.core.errors import BenchError

data_app = typer.Typer(help="Fetch or unpack data sets for fine-tunes.", no_args_is_help=True)


def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders of images.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="A fine-tune .pt file.")],
    json_out: JsonFlag = False,
    annotate: Annotated[
        Path | None, typer.Option("--annotate", help="Write labelled copies of the images here.")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Classes shown per image.")] = 5,
) -> None:
    """Print every class's probability for each image (fine-tune checkpoint)."""
    from bench.train.checkpoints import load_checkpoint, predict_images

    model, meta = load_checkpoint(checkpoint)
    results = predict_images(model, meta, _expand(images))
    if annotate is not None:
        _annotate_all(results, annotate)
    if json_out:
        print_json(results)
    else:
        stdout.print(_predict_table(results, top))


def _expand(paths: list[Path]) -> list[Path]:
    """Files as given, folders replaced by the image files inside them (sorted)."""
    from bench.train.data import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise BenchError(f"image {str(path)!r} does not exist")
    if not files:
        raise BenchError(f"no image files found in {', '.join(map(str, paths))}")
    return files


def _predict_table(results: list[dict], top: int) -> Table:
    """A rich table: image, predicted class, probability, the top-k classes."""
    table = Table(title="predictions")
    for column in ("image", "class", "prob", f"top {top}"):
        table.add_column(column)
    for res in results:
        ranked = sorted(res["probs"].items(), key=lambda kv: -kv[1])[:top]
        table.add_row(
            Path(res["image"]).name,
            res["class"],
            f"{res['prob']:.3f}",
            "  ".join(f"{c} {p:.3f}" for c, p in ranked),
        )
    return table


def _annotate_all(results: list[dict], dest: Path) -> None:
    """Write each image with its predicted class and probability drawn on it."""
    from PIL import Image, ImageDraw

    dest.mkdir(parents=True, exist_ok=True)
    for index, res in enumerate(results):
        source = Path(res["image"])
        with Image.open(source) as img:
            img = img.convert("RGB")
            draw = ImageDraw.Draw(img)
            text = f"{res['class']} {res['prob']:.2f}"
            box = draw.textbbox((2, 2), text)
            draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
            draw.text((2, 2), text, fill=(255, 255, 255))
            img.save(dest / f"{index:04d}-{source.stem}.png")
    stderr.print(f"annotated {len(results)} image(s) in {dest}")


def flowers(
    dest: Annotated[
        Path | None,
        typer.Option("--dest", help="Unpack here instead of the cache that suites look in."),
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--from", help="Unpack this local .tar/.tgz instead.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Download timeout (s).")] = 30.0,
) -> None:
    """Fetch TensorFlow's flower_photos for `data: flowers` (or unpack a local archive, --from)."""
    from bench.train.data import fetch_flowers, install_dataset
    from bench.train.datasets import DATASETS, dataset_in, datasets_cache

    dataset = DATASETS["flowers"]
    if dest is not None:
        root = fetch_flowers(dest, source, dataset.url, timeout)
        stdout.print(f"flower photos ready in {root}; use them with `--data {root}`")
        return
    cached = dataset_in(datasets_cache(), dataset)
    if cached is not None and source is None:
        stdout.print(f"flower photos already in {cached}; suites naming `data: flowers` use them")
        return
    root = install_dataset(dataset, source, timeout)
    stdout.print(f"flower photos ready in {root}; suites naming `data: flowers` find them there")


def register(app: typer.Typer) -> None:
    """Add `predict` and `data flowers` to the app."""
    app.command("predict")(predict)
    data_app.command("flowers")(flowers)
    app.add_typer(data_app, name="data")
