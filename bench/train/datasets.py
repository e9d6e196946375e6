"""Data sets by name: `data: flowers` in a suite finds its images on any machine, or says how.

A name resolves, in order, to the `--data PATH` given (the caller passes it instead of the
name), a `BENCH_DATA` folder holding the data set under one of its entry names (a folder or a
.tar/.tgz archive), then the cache that `bench data NAME` fills. When none holds it, one line
names the command that fetches it. Anything that is not a registered name is a path.
Torch-free: the CLI and suite checks use it before the training code loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BenchError

DATA_VARIABLE = "BENCH_DATA"
ARCHIVE_SUFFIXES = (".tar", ".tgz", ".tar.gz")
FLOWERS_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
)


@dataclass(frozen=True)
class Dataset:
    """A data set that suites name: where it comes from and the names a copy may have."""

    name: str
    what: str
    url: str
    entries: tuple[str, ...]


DATASETS = {
    "flowers": Dataset(
        "flowers",
        "TensorFlow's flower_photos, 5 classes, about 220 MiB",
        FLOWERS_URL,
        ("flowers", "flower_photos", "flowers-128"),
    ),
}


def datasets_cache() -> Path:
    """The folder `bench data NAME` fills: $XDG_CACHE_HOME/bench/datasets (~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "bench" / "datasets"


def dataset_in(folder: Path, dataset: Dataset) -> Path | None:
    """The data set's folder or archive inside `folder`, by its entry names (None: absent)."""
    for entry in dataset.entries:
        candidates = [folder / entry, *(folder / f"{entry}{s}" for s in ARCHIVE_SUFFIXES)]
        for path in candidates:
            if path.is_dir() or path.is_file():
                return path
    return None


def locate_data(source: str) -> str:
    """A path as given; a data set's name as its copy in BENCH_DATA or the cache.

    BenchError, naming the command to run, when neither holds it.
    """
    dataset = DATASETS.get(source)
    if dataset is None:
        return source
    variable = os.environ.get(DATA_VARIABLE, "").strip()
    folders = ([Path(variable).expanduser()] if variable else []) + [datasets_cache()]
    for folder in folders:
        found = dataset_in(folder, dataset)
        if found is not None:
            return str(found)
    raise BenchError(missing_message(dataset, variable))


def missing_message(dataset: Dataset, variable: str) -> str:
    """The one line for a named data set found nowhere: the command that fetches it."""
    looked = (
        f"{DATA_VARIABLE}={variable} holds none of {', '.join(dataset.entries)}; "
        if variable
        else ""
    )
    return (
        f"data set {dataset.name!r} ({dataset.what}) is not on this machine: {looked}"
        f"run `bench data {dataset.name}` to download it into {datasets_cache()} "
        f"(offline: `bench data {dataset.name} --from ARCHIVE`), or pass `--data PATH`"
    )
