"""What the fault and hostile-input guards cost: how fast each hostile input is refused, and what
the guards add to normal work.

Refusals (in this process, after imports): a YAML alias bomb, a 3.2 million-case sweep, deep
nesting, a recursive alias, a binary suite file; a 1.1 MB .tar.gz holding a 1 GiB member (made
here, by gzip-compressing 1 GiB of zeros, which takes a few seconds first); a 30000x30000 PNG of
a few hundred bytes; `g1:c1=100000,c2=100000` (745 GiB of parameters). Costs: the meta pre-check
before a real build (resnet50, resnet152), taking and releasing a run folder's lock, and writing a
fine-tune's last-epoch state (shufflenet_v2_x1_0 with AdamW). Median of `--reps` calls each.
Run: `uv run python benchmarks/fault_costs.py [--reps N] [--quick]` (--quick: no 1 GiB bomb).
"""

from __future__ import annotations

import argparse
import gzip
import io
import statistics
import struct
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from bench.core.errors import BenchError
from bench.core.models import build_model, check_parameter_memory
from bench.runs.lock import run_folder_lock
from bench.runs.suite import load_suite
from bench.train import data as imgdata
from bench.train.archive import safe_extract
from bench.train.checkpoints import save_torch

ALIAS_BOMB = (
    "name: b\na: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "cases: *i\n"
)
SWEEP = "name: big\ncases:\n  - name: g\n    models: ['g1:blocks=1,size=8']\n    sweep: {{{}}}\n"
SUITES = {
    "YAML alias bomb (9^9 nodes)": ALIAS_BOMB,
    "sweep of 3.2 M cases": SWEEP.format(
        ", ".join(f"{k}: {list(range(1, 21))}" for k in ("c1", "c2", "batch", "threads", "size"))
    ),
    "flow list nested 5000 deep": "name: d\ncases: " + "[" * 5000 + "]" * 5000 + "\n",
    "block list nested 5000 deep": "name: d\ncases:\n  " + "- " * 5000 + "x\n",
    "recursive alias": "name: r\ncases: &a [*a]\n",
}


class Zeros:
    """A file object of n zero bytes, read in chunks (no 1 GiB buffer)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, size: int = -1) -> bytes:
        """Up to `size` zero bytes."""
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)


def gzip_bomb(path: Path, size: int) -> Path:
    """A .tar.gz holding one member of `size` zero bytes."""
    with gzip.open(path, "wb", compresslevel=9) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("flowers/daisy/big.bin")
        info.size = size
        tar.addfile(info, Zeros(size))
    return path


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A 1x1 PNG from PIL whose header is then rewritten to claim width x height pixels."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, "PNG")
    raw = bytearray(buffer.getvalue())
    raw[16:24] = struct.pack(">II", width, height)  # IHDR's data starts after its type
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path.write_bytes(bytes(raw))
    return path


def median_ms(call: Callable[[], object], reps: int) -> tuple[float, str]:
    """Median milliseconds of `reps` calls, and the first line of what the last one raised."""
    times, said = [], ""
    for _ in range(reps):
        start = time.perf_counter()
        try:
            call()
        except BenchError as exc:
            said = str(exc).split(": ", 1)[-1][:90]
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), said


def refusals(tmp: Path, reps: int, quick: bool) -> list[tuple[str, float, str]]:
    """(input, ms to refuse, what was said) per hostile input."""
    rows = []
    for label, text in SUITES.items():
        path = tmp / f"{len(rows)}.yaml"
        path.write_text(text)
        rows.append((label, *median_ms(lambda p=path: load_suite(p), reps)))
    binary = tmp / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    rows.append(("binary suite file", *median_ms(lambda: load_suite(binary), reps)))
    if not quick:
        bomb = gzip_bomb(tmp / "bomb.tar.gz", 1 << 30)
        label = f"{bomb.stat().st_size / 1e6:.2f} MB .tar.gz holding 1 GiB"
        rows.append((label, *median_ms(lambda: safe_extract(bomb, tmp / "out"), reps)))
    png = bomb_png(tmp / "huge.png", 30000, 30000)
    ms, _ = median_ms(lambda: imgdata.load_image(png, 64), reps)
    rows.append(("30000x30000 PNG (decoded as unreadable)", ms, "None (counted as skipped)"))
    spec = "g1:c1=100000,c2=100000"
    rows.append((spec, *median_ms(lambda: build_model(spec), reps)))
    return rows


def costs(tmp: Path, reps: int) -> list[tuple[str, float, str]]:
    """(guard, ms it adds, note) for normal work."""
    rows = []
    for spec in ("resnet50", "resnet152"):
        build_model(spec, meta=True)  # imports and first-call costs out of the way
        check_ms, _ = median_ms(lambda s=spec: check_parameter_memory(s, {}), reps)
        build_ms, _ = median_ms(lambda s=spec: build_model(s), max(1, reps // 2))
        rows.append(
            (f"meta pre-check of {spec}", check_ms, f"a whole real build: {build_ms:.0f} ms")
        )
    folder = tmp / "run"
    folder.mkdir()

    def lock_once() -> None:
        with run_folder_lock(folder):
            pass

    rows.append(("run folder lock, taken and released", median_ms(lock_once, reps)[0], "per run"))
    model = build_model("shufflenet_v2_x1_0", num_classes=5)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    path = tmp / "m.last.pt"
    ms, _ = median_ms(lambda: save_torch(path, state), reps)
    rows.append(
        (
            "last-epoch state of shufflenet_v2_x1_0",
            ms,
            f"{path.stat().st_size / 1e6:.1f} MB per epoch",
        )
    )
    return rows


def main() -> None:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for title, rows in (
            ("hostile input: time to refuse", refusals(tmp, args.reps, args.quick)),
            ("guards: cost in normal work", costs(tmp, args.reps)),
        ):
            table = Table(title=title)
            for column in ("input", "ms (median)", "said"):
                table.add_column(column)
            for label, ms, said in rows:
                table.add_row(label, f"{ms:.1f}", said)
            console.print(table)


if __name__ == "__main__":
    main()
