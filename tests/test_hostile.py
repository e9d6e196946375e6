"""Hostile input: archive bombs, checkpoints, samples, model specs and suite files an attacker (or
an accident) could write; each is one line naming the file, field or value (exit 2), in seconds.
The error boundary maps what still escapes the library to one line too."""

from __future__ import annotations

import errno
import gzip
import io
import json
import pickle
import re
import tarfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner, Result

from bench.cli.app import app, failure_message
from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.runs.suite import load_suite
from bench.train import archive
from bench.train.checkpoints import load_checkpoint, load_matching_weights, save_checkpoint
from bench.train.options import TrainOptions

GIB = 1 << 30


def invoke(*args: str, **env: str) -> Result:
    """Run the bench app with these arguments (and environment variables)."""
    return CliRunner().invoke(app, list(args), env=env or None)


def one_line_error(result: Result, *parts: str) -> str:
    """Assert exit 2 with one `error:` line and no traceback; return the line."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


# ---- archives ----


def claimed_tar_gz(path: Path, sizes: dict[str, int]) -> Path:
    """A tiny .tar.gz whose member headers claim these sizes (the data itself is absent)."""
    headers = []
    for name, size in sizes.items():
        info = tarfile.TarInfo(name)
        info.size = size
        headers.append(info.tobuf())
    raw = b"".join(headers)
    path.write_bytes(gzip.compress(raw + bytes(1024)))
    return path


def real_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    """A tar archive holding these files."""
    with tarfile.open(path, mode) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def test_a_gzip_bomb_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch) -> None:
    bomb = claimed_tar_gz(tmp_path / "bomb.tar.gz", {"flowers/a/big.bin": GIB})
    assert bomb.stat().st_size < 2000
    with pytest.raises(BenchError, match="ratio over 100; refused before writing") as caught:
        archive.safe_extract(bomb, tmp_path / "out")
    assert "BENCH_MAX_EXTRACT_RATIO" in str(caught.value)
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("BENCH_MAX_EXTRACT_RATIO", "1e12")  # the total cap holds on its own
    huge = claimed_tar_gz(tmp_path / "huge.tar.gz", {"a.bin": 80 * GIB})
    with pytest.raises(BenchError, match="more than 64 GiB.*BENCH_MAX_EXTRACT_BYTES"):
        archive.safe_extract(huge, tmp_path / "out")


def test_the_caps_can_be_raised_and_lowered(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(archive, "RATIO_FLOOR_BYTES", 1 << 20)
    zeros = real_tar(tmp_path / "zeros.tgz", {"z/a.bin": bytes(4 << 20), "z/b.txt": b"hi"})
    with pytest.raises(BenchError, match="ratio over 100"):
        archive.safe_extract(zeros, tmp_path / "out")
    monkeypatch.setenv("BENCH_MAX_EXTRACT_RATIO", "1e6")
    archive.safe_extract(zeros, tmp_path / "out")
    assert (tmp_path / "out" / "z" / "a.bin").stat().st_size == 4 << 20
    monkeypatch.setenv("BENCH_MAX_EXTRACT_BYTES", "1M")
    with pytest.raises(BenchError, match="more than 1 MiB"):
        archive.safe_extract(zeros, tmp_path / "again")
    monkeypatch.setenv("BENCH_MAX_EXTRACT_BYTES", "lots")
    with pytest.raises(BenchError, match="BENCH_MAX_EXTRACT_BYTES='lots': expected a positive"):
        archive.safe_extract(zeros, tmp_path / "again")


def test_an_archive_larger_than_the_free_space_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(archive, "_free_bytes", lambda dest: 5000)
    small = real_tar(tmp_path / "s.tar", {"a/x.txt": b"x" * 3000, "a/y.txt": b"y"}, "w")
    with pytest.raises(BenchError, match="only 4.88 KiB are free"):
        archive.safe_extract(small, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_extraction_removes_what_it_wrote(tmp_path: Path, monkeypatch) -> None:
    files = {f"d/{i}.txt": b"data" for i in range(4)}
    source = real_tar(tmp_path / "d.tgz", files)
    real, calls = tarfile.TarFile.extract, []

    def fail_third(self: tarfile.TarFile, member: tarfile.TarInfo, *args, **kwargs) -> None:
        calls.append(member.name)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", fail_third)
    with pytest.raises(
        BenchError, match="no space left unpacking .*partial extraction was removed"
    ):
        archive.safe_extract(source, tmp_path / "new" / "dest")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "mine"
    (kept / "d").mkdir(parents=True)
    (kept / "d" / "keep.txt").write_text("mine")
    calls.clear()
    with pytest.raises(BenchError, match="no space left"):
        archive.safe_extract(source, kept)
    assert sorted(p.name for p in (kept / "d").iterdir()) == ["keep.txt"]


# ---- checkpoints ----


class Planted:
    """Unpickling this would create a file (stands in for any code a pickle can run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuine three-class checkpoint of shufflenet_v2_x0_5."""
    folder = tmp_path_factory.mktemp("ckpt")
    model = build_model("shufflenet_v2_x0_5", num_classes=3)
    paths = (folder / "m.pt", folder / "m.class_indices.json")
    record = {"epoch": 1, "val_top1": 50.0}
    save_checkpoint(paths, model, ("a", "b", "c"), TrainOptions(), "shufflenet_v2_x0_5", record)
    return paths[0]


def test_a_malicious_pickle_is_refused_without_unsafe_advice(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"spec": Planted(marker), "state_dict": {}}, evil)
    line = one_line_error(invoke("predict", "--checkpoint", str(evil), "x.jpg"), str(evil))
    assert "refused, it holds more than tensors" in line and "weights_only" not in line
    with pytest.raises(BenchError, match="weights: .*refused") as caught:
        load_matching_weights(build_model("g1:c1=2,c2=2,size=4"), evil)
    assert "weights_only" not in str(caught.value) and not marker.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: [1, 2], "not a bench fine-tune checkpoint"),
        (lambda p: {k: v for k, v in p.items() if k != "classes"}, "it needs state_dict, classes"),
        (lambda p: {**p, "classes": "abc"}, "classes: expected a list of 2 to 100000 names"),
        (lambda p: {**p, "classes": ["a", "a", "b"]}, "classes: expected distinct"),
        (lambda p: {**p, "spec": 7}, "spec: expected a model spec string"),
        (lambda p: {**p, "eval": {**p["eval"], "image_size": 10**9}}, "eval: image_size"),
        (lambda p: {**p, "eval": {**p["eval"], "std": [0, 1, 1]}}, "eval.std"),
        (lambda p: {**p, "classes": list("abcde")}, "head (fc) has 3 outputs but it lists 5"),
        (lambda p: {**p, "state_dict": {"fc.bias": 1}}, "entry 'fc.bias' is not a named tensor"),
        (
            lambda p: {
                **p,
                "state_dict": {k: v for k, v in p["state_dict"].items() if k != "fc.bias"},
            },
            "state_dict lacks 'fc.bias'",
        ),
    ],
)
def test_odd_checkpoint_metadata_is_one_line(
    checkpoint: Path, tmp_path: Path, change, message: str
) -> None:
    payload = torch.load(checkpoint, weights_only=True)
    odd = tmp_path / "odd.pt"
    torch.save(change(payload), odd)
    with pytest.raises(
        BenchError, match=f"checkpoint {re.escape(str(odd))}: .*{re.escape(message)}"
    ):
        load_checkpoint(odd)


def test_a_genuine_checkpoint_still_loads(checkpoint: Path) -> None:
    model, meta = load_checkpoint(checkpoint)
    assert meta["classes"] == ["a", "b", "c"] and model.fc.out_features == 3


# ---- bench compare ----


def run_folder(folder: Path, samples: list) -> Path:
    """A run folder with one ok case `c` holding these raw samples."""
    folder.mkdir(parents=True)
    row = f"case_id,status,latency_ms_median,n_samples\nc,ok,1.0,{len(samples)}\n"
    (folder / "results.csv").write_text(row)
    line = json.dumps({"case_id": "c", "samples_ms": samples})  # NaN and Infinity as JSON does
    (folder / "samples.jsonl").write_text(line + "\n")
    env = {"results_format_version": 1, "hostname": "h", "calibration": {"ref_workload_ms": 1}}
    (folder / "env.json").write_text(json.dumps(env))
    return folder


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_compare_refuses_non_finite_or_non_positive_samples(tmp_path: Path, bad: float) -> None:
    good = run_folder(tmp_path / "base", [1.0 + i / 100 for i in range(680)])
    broken = run_folder(tmp_path / "new", [1.0 + i / 100 for i in range(679)] + [bad])
    line = one_line_error(invoke("compare", str(good), str(broken)), "samples.jsonl", "case 'c'")
    assert "1 of 680 latency samples are not positive finite numbers" in line


def pytest_json(path: Path, entry: object) -> Path:
    """A pytest-benchmark file with one benchmark entry."""
    path.write_text(json.dumps({"machine_info": "odd", "benchmarks": [entry]}))
    return path


GOOD_STATS = {"median": 0.01, "mean": 0.01, "iqr": 0.001, "stddev": 0.001, "rounds": 20}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "t", "stats": {"data": [0.0] * 10}}, "case 't': 10 of 10 latency samples"),
        ({"name": "t", "stats": {"data": [-0.1] * 10}}, "case 't': 10 of 10 latency samples"),
        ({"name": "t", "stats": {"data": ["x"]}}, "case 't': latency samples are not a non-empty"),
        ({"name": "t", "stats": {**GOOD_STATS, "median": 0}}, "stats.median is 0"),
        ({"name": "t", "stats": {**GOOD_STATS, "median": "fast"}}, "stats.median is 'fast'"),
        ({"name": "t", "stats": {"mean": 0.01}}, "stats.rounds is None"),
        ({"name": "t"}, "case 't': no 'stats' object"),
        (["not", "an", "object"], "benchmarks[0]: expected an object, got list"),
        ({"name": "t", "stats": GOOD_STATS, "extra_info": 5}, "extra_info is not an object"),
    ],
)
def test_compare_refuses_malformed_pytest_benchmark_entries(
    tmp_path: Path, entry: object, message: str
) -> None:
    good = pytest_json(tmp_path / "good.json", {"name": "t", "stats": GOOD_STATS})
    bad = pytest_json(tmp_path / "bad.json", entry)
    one_line_error(invoke("compare", str(good), str(bad)), str(bad), message)


# ---- model specs ----


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shufflenet_v1:scale=inf", "invalid scale=inf in model spec"),
        ("shufflenet_v1:scale=nan", "invalid scale=nan in model spec"),
        ("shufflenet_v1:scale=1e300", "too large (at most 2147483647)"),
        ("g1:c1=1e400,c2=4", "invalid c1=inf"),
        ("g1:c1=4,c2=8,c1=8", "option 'c1' is given twice"),
        ("shufflenet_v1:scale=-1", "invalid scale=-1"),
    ],
)
def test_bad_spec_values_are_one_line_naming_the_field(spec: str, message: str) -> None:
    one_line_error(invoke("count", spec), message)


def test_a_model_too_big_for_memory_is_refused_before_allocating() -> None:
    line = one_line_error(invoke("time", "g1:c1=100000,c2=100000", "--budget", "0.1"))
    assert "needs 745 GiB for its 200 G parameters alone, more than the" in line


def test_a_100_kb_spec_is_shortened_in_its_message() -> None:
    line = one_line_error(invoke("count", "g1:c1=4,c2=4," + "x" * 100_000 + "=1"), "chars)")
    assert len(line) < 300


# ---- suite files ----

ALIAS_BOMB = """
name: bomb
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
cases: [*f, *f, *f, *f, *f, *f, *f, *f, *f]
"""
BIG_SWEEP = """
name: big
cases:
  - name: g1
    models: ["g1:blocks=1,size=8"]
    sweep: {c1: %s, c2: %s, batch: %s, threads: %s, size: %s}
""" % ((list(range(1, 21)),) * 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, "expands to more than 100000 YAML nodes"),
        (BIG_SWEEP, "cases[0].sweep: expands to 3,200,000 cases"),
        ("name: deep\ncases: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than 64 levels"),
        ("name: deep\ncases:\n  " + "- " * 3000 + "x\n", "nested too deeply to parse"),
        ("name: deep\ncases:\n  " + "- " * 80 + "x\n", "nested more than 64 levels"),
        ("name: r\ncases: &a [*a]\n", "a recursive alias"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file (byte 0x89 at offset 0"),
        ("name: nul\x00\n", "not a text file (a NUL byte at offset 9)"),
        ("name: x\n#" + "y" * (1 << 20) + "\n", "a suite file may hold at most 1048576 bytes"),
    ],
)
def test_a_broken_suite_file_is_one_line_naming_it(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(BenchError, match=r"suite\.yaml") as caught:
        load_suite(path)
    assert message in str(caught.value)


def test_the_case_cap_is_clear_and_overridable(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "four.yaml"
    path.write_text("name: four\ncases:\n  - name: g\n    models: ['g1:c1=2,size=4']\n"
                    "    sweep: {c2: [1, 2, 3, 4]}\n")  # fmt: skip
    monkeypatch.setenv("BENCH_MAX_CASES", "3")
    line = one_line_error(invoke("run", str(path), "--no-calibrate"), "four.yaml:5")
    assert "cap of 3 cases per suite" in line and "BENCH_MAX_CASES=<cases>" in line
    monkeypatch.setenv("BENCH_MAX_CASES", "4")
    assert len(load_suite(path).cases) == 4


# ---- the error boundary ----


@pytest.mark.parametrize(
    ("exc", "line", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/r/results.csv"),
         "cannot write /r/results.csv: No space left on device", 2),
        (PermissionError(errno.EACCES, "Permission denied", "/r/env.json"),
         "Permission denied: /r/env.json", 2),
        (KeyError("spec"), "missing key 'spec' (KeyError)", 2),
        (AttributeError("'list' object has no attribute 'get'"),
         "AttributeError: 'list' object has no attribute 'get'", 2),
        (pickle.UnpicklingError("Weights only load failed. Re-running `torch.load` with "
                                "`weights_only` set to `False` will likely succeed\n\n"
                                "Unsupported global: GLOBAL posix.system"),
         "refused to unpickle a file (Unsupported global: GLOBAL posix.system)", 2),
        (OverflowError("cannot convert float infinity to integer"),
         "a number too large (cannot convert float infinity to integer)", 2),
        (MemoryError(), "out of memory (MemoryError)", 2),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB"),
         "out of memory (CUDA out of memory. Tried to allocate 40.00 GiB)", 2),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
                      "memory: you tried to allocate 40000000000 bytes"),
         "out of memory ([enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator", 2),
        (RecursionError("maximum recursion depth exceeded"), "input nested too deeply", 2),
        (ZeroDivisionError("division by zero"), "internal error: ZeroDivisionError", 1),
    ],
)  # fmt: skip
def test_the_boundary_maps_what_escapes_to_one_line(exc: Exception, line: str, code: int) -> None:
    message, exit_code = failure_message(exc)
    assert message.startswith(line) and exit_code == code
    assert message.endswith("(bench --debug or BENCH_DEBUG=1 shows the traceback)")
    assert "weights_only" not in message and "\n" not in message


def test_debug_shows_the_traceback_the_line_hides(monkeypatch) -> None:
    def broken() -> list:
        raise AttributeError("'NoneType' object has no attribute 'stem'")

    monkeypatch.setattr("bench.runs.suite.shipped_suites", broken)
    monkeypatch.setenv("BENCH_DEBUG", "0")  # and restored after: --debug sets it to 1
    one_line_error(invoke("list", "suites"), "AttributeError: 'NoneType' object")
    for result in (invoke("list", "suites", BENCH_DEBUG="1"), invoke("--debug", "list", "suites")):
        assert result.exit_code == 2 and "Traceback" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: AttributeError")
