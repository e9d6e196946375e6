"""Faults: kills at chosen points, torn rows, concurrent writers, a full disk, odd file names,
killed fine-tunes. Nothing measured is lost or torn; every fault is one line."""

from __future__ import annotations

import csv
import errno
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from fixtures.images import bomb_png, write_image_folder
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.core.io import DiskFullError, atomic_write_text, escape_unencodable
from bench.runs import runner
from bench.runs.folder import load_run, read_rows, write_rows
from bench.runs.lock import run_folder_lock
from bench.runs.runner import Measurement, RunContext, RunState, run_suite
from bench.runs.suite import Case
from bench.train import data as imgdata
from bench.train import loop as train
from bench.train.checkpoints import save_torch
from bench.train.options import parse_train_options
from bench.train.state import train_state_path

SUITE = """
name: faults
defaults: {metrics: [count]}
cases:
  - name: g2
    models: ["g2:c=8,layers=1,size=8"]
    sweep: {groups: [1, 2, 4, 8]}
  - name: g1
    models: ["g1:c1=4,c2=8,blocks=1,size=8"]
"""
N_CASES = 5
TINY_TRAIN = {"image_size": 32, "batch": 8, "epochs": 2, "lr": 0.01, "val_fraction": 0.25}
TINY_TRAIN |= {"workers": 1, "threads": 1}


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    """A five-case suite."""
    path = tmp_path / "faults.yaml"
    path.write_text(textwrap.dedent(SUITE).lstrip(), encoding="utf-8")
    return path


class Fake:
    """A measurement that records its calls and returns `n` raw samples per case."""

    def __init__(self, n: int = 3, fail: BaseException | None = None) -> None:
        self.calls: list[str] = []
        self.n, self.fail = n, fail

    def __call__(self, case: Case, ctx: RunContext) -> Measurement:
        self.calls.append(case.case_id)
        if self.fail is not None and len(self.calls) == 3:
            raise self.fail
        return Measurement({"params": 1, "n_samples": self.n}, [1.0 + i for i in range(self.n)])


def run(suite_file: Path, out: Path, measure: Fake, **kwargs: object) -> Path:
    """run_suite without calibration."""
    return run_suite(suite_file, out=out, calibrate=False, measure=measure, **kwargs)


def run_until_killed(body: Callable[[], object], timeout: float = 120) -> int:
    """Run `body` in a forked child, which a patched writer SIGKILLs at the chosen point.

    A real kill of a real process (the child shares this process's imports, so it starts in
    milliseconds); returns the signal that ended the child.
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            body()
        finally:
            os._exit(3)  # reached only when the chosen point never came
    pidfd = os.pidfd_open(pid)  # readable once the child has ended: no polling
    try:
        ended, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ended:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("the child never reached the chosen point")
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


def test_kill_between_samples_and_row_loses_nothing(
    suite_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    real = runner.write_samples

    def write_then_die(run_dir: Path, samples: dict, *rest: object) -> None:
        real(run_dir, samples, *rest)  # rest: the interleaved rounds (issue 17)
        if len(samples) == 3:  # the third case's samples are on disk, its row is not
            os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(runner, "write_samples", write_then_die)
    assert run_until_killed(lambda: run(suite_file, out, Fake(n=2))) == signal.SIGKILL
    monkeypatch.undo()
    killed = load_run(out)
    assert len(killed.rows) == 2 and len(killed.samples) == 3  # a row commits its case
    fake = Fake(n=2)
    with pytest.warns(UserWarning, match="took over the lock of pid"):  # the killed writer's
        run(suite_file, None, fake, resume=out)
    rows = load_run(out).rows
    assert len(fake.calls) == N_CASES - 2 and not set(killed.rows["case_id"]) & set(fake.calls)
    assert len(rows) == N_CASES and rows["case_id"].is_unique
    assert all(len(s) == 2 for s in load_run(out).samples.values())


def test_ok_row_without_its_samples_is_measured_again(suite_file: Path, tmp_path: Path) -> None:
    out = run(suite_file, tmp_path / "run", Fake())
    lines = (out / "samples.jsonl").read_text().splitlines()
    lost = json.loads(lines[1])["case_id"]
    (out / "samples.jsonl").write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # an older bench
    assert RunState(out).incomplete == {lost: "0 of its 3 raw samples stored"}
    fake = Fake()
    with pytest.warns(UserWarning, match="1 ok row.s. have incomplete data"):
        run(suite_file, None, fake, resume=out)
    assert fake.calls == [lost] and len(load_run(out).samples[lost]) == 3


def test_torn_last_row_is_one_warning_and_measured_again(suite_file: Path, tmp_path: Path) -> None:
    out = run(suite_file, tmp_path / "run", Fake())
    table = out / "results.csv"
    text = table.read_text()
    last = next(csv.reader([text.splitlines()[-1]]))[0]
    table.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])  # cut mid-line
    with pytest.warns(UserWarning, match=f"last row .case '{last}'. is torn") as caught:
        assert last not in set(read_rows(out)["case_id"])
    assert len(caught) == 1
    shown = CliRunner().invoke(app, ["show", str(out)])
    assert shown.exit_code == 0 and "g2:c=8" in shown.stdout  # the measured rows are shown
    warning_lines = [line for line in shown.stderr.splitlines() if line.strip()]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("warning:")
    assert "UserWarning" not in shown.stderr and "warnings.warn" not in shown.stderr
    fake = Fake()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(suite_file, None, fake, resume=out)
    assert fake.calls == [last]
    assert table.read_text().endswith("\n") and len(load_run(out).rows) == N_CASES


def test_a_second_writer_is_refused_and_a_dead_writers_lock_taken_over(
    suite_file: Path, tmp_path: Path
) -> None:
    out = run(suite_file, tmp_path / "run", Fake())
    with (
        run_folder_lock(out),
        pytest.raises(BenchError, match=f"being written by pid {os.getpid()}"),
    ):
        run(suite_file, None, Fake(), resume=out)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    holder = {"pid": int(gone.stdout), "host": socket.gethostname(), "since": "2026-01-01"}
    (out / ".lock").write_text(json.dumps(holder))  # as a SIGKILLed writer leaves it
    with pytest.warns(UserWarning, match=f"took over the lock of pid {holder['pid']}"):
        run(suite_file, None, Fake(), resume=out)
    assert (out / ".lock").read_text() == ""  # released cleanly


def test_temp_files_of_a_killed_writer_are_removed(suite_file: Path, tmp_path: Path) -> None:
    out = run(suite_file, tmp_path / "run", Fake())
    stray = out / ".results.csv.k2x9q_a1.tmp"
    stray.write_text("case_id,sta")
    run(suite_file, None, Fake(), resume=out)
    assert not stray.exists() and (out / "results.csv").is_file()


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """A real full disk for this process: no file may grow past `limit` bytes (RLIMIT_FSIZE).

    Writes past it fail in the kernel with EFBIG, as they fail with ENOSPC on a full disk;
    SIGXFSZ, which would kill the process, is ignored meanwhile. Both are restored after.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_full_disk_is_one_line_naming_the_folder_and_keeps_rows(
    suite_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [1.25] * 2000  # 12 kB of samples.jsonl per case: the third case's do not fit
    fake = lambda case, ctx: Measurement({"n_samples": 2000}, samples)  # noqa: E731
    monkeypatch.setattr(runner, "measure_case", fake)
    out = tmp_path / "run"
    args = ["run", str(suite_file), "--out", str(out), "--no-calibrate", "--no-progress"]
    with file_size_limit(30_000):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert lines[0].startswith("error: no space left to write samples.jsonl in")
    assert f"every case finished before it is kept in {out}" in lines[0]
    assert f"--resume {out}" in lines[0]
    kept = load_run(out)
    assert len(kept.rows) == 2 and (kept.rows["status"] == "ok").all()
    assert [len(s) for s in kept.samples.values()] == [2000, 2000]
    assert not list(out.glob(".*.tmp"))


def test_full_disk_inside_a_case_keeps_its_error_row_and_stops(
    suite_file: Path, tmp_path: Path
) -> None:
    full = DiskFullError(tmp_path / "run" / "model.pt", "No space left on device")
    fake = Fake(fail=full)
    with pytest.raises(BenchError, match=r"model.pt in .*: the run stopped; every case finished"):
        run(suite_file, tmp_path / "run", fake)
    rows = load_run(tmp_path / "run").rows
    assert list(rows["status"]) == ["ok", "ok", "error"] and len(fake.calls) == 3
    assert "no space left" in rows["error"].iloc[2]


def test_a_failed_write_removes_its_temp_file_and_says_disk_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(payload: object, out: object) -> None:
        out.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(DiskFullError, match=f"model.pt in {tmp_path}"):
        save_torch(tmp_path / "model.pt", {"w": torch.zeros(3)})
    assert list(tmp_path.iterdir()) == []


def test_names_that_are_not_utf8_are_escaped_never_fatal(tmp_path: Path) -> None:
    odd = "caf" + b"\xe9".decode("utf-8", "surrogateescape")
    assert escape_unencodable(odd) == "caf\\xe9" and escape_unencodable("café") == "café"
    write_rows(tmp_path, [{"case_id": "a", "status": "ok", "classes": f"{odd},tea"}])
    assert read_rows(tmp_path)["classes"].iloc[0] == "caf\\xe9,tea"
    atomic_write_text(tmp_path / "note.txt", odd)
    assert (tmp_path / "note.txt").read_text(encoding="utf-8") == "caf\\xe9"


def test_finetune_with_an_odd_class_name_and_a_bomb_writes_its_row(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "data", ["tea", "coffee"], per_class=6, size=32)
    try:
        os.rename(os.fsencode(data / "coffee"), os.fsencode(data) + b"/caf\xe9")
    except OSError:
        pytest.skip("this file system refuses file names that are not UTF-8")
    bomb_png(data / "tea" / "huge.png", 30000, 30000)
    suite = tmp_path / "ft.yaml"
    suite.write_text(
        "name: ft\ncases:\n  - name: tune\n    kind: finetune\n    metrics: [count]\n"
        f"    models: [shufflenet_v2_x0_5]\n    train: {json.dumps({**TINY_TRAIN, 'epochs': 1})}\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = run_suite(suite, out=tmp_path / "run", data=str(data), calibrate=False)
    row = load_run(out).rows.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["classes"] == "caf\\xe9,tea" and row["skipped_files"] == 1
    messages = [str(w.message) for w in caught]
    assert any("1 of them over the decompression-bomb limit" in m for m in messages)
    assert not any("DecompressionBomb" in type(w.message).__name__ for w in caught)
    assert not train_state_path(out, "shufflenet_v2_x0_5").exists()  # removed once recorded


def test_a_finished_finetune_is_not_trained_again_when_its_row_was_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_image_folder(tmp_path / "data", ["a", "b"], per_class=8, size=32)
    suite = tmp_path / "ft.yaml"
    suite.write_text(
        "name: ft\ncases:\n  - name: tune\n    kind: finetune\n    metrics: [count]\n"
        f"    models: [shufflenet_v2_x0_5]\n    train: {json.dumps({**TINY_TRAIN, 'epochs': 1})}\n"
    )

    def count_fails(case: Case) -> dict:
        raise RuntimeError("killed while counting")  # after training, before the row

    monkeypatch.setattr(runner, "count_columns", count_fails)
    out = run_suite(suite, out=tmp_path / "run", data=str(data), calibrate=False)
    assert load_run(out).rows["status"].iloc[0] == "error"
    assert train_state_path(out, "shufflenet_v2_x0_5").is_file()  # the training is kept
    monkeypatch.undo()
    spy = EpochSpy()
    monkeypatch.setattr(train, "_one_epoch", spy)
    run_suite(suite, resume=out, data=str(data), calibrate=False)
    row = load_run(out).rows.iloc[0]
    assert row["status"] == "ok" and row["epochs"] == 1 and spy.run == []
    assert not train_state_path(out, "shufflenet_v2_x0_5").exists()


class EpochSpy:
    """Wraps train._one_epoch: records the epochs run, raises KeyboardInterrupt at `kill_at`."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.real, self.kill_at, self.run = train._one_epoch, kill_at, []

    def __call__(self, loop: train.Loop, epoch: int) -> dict:
        if epoch == self.kill_at:
            raise KeyboardInterrupt  # the process dies during this epoch
        self.run.append(epoch)
        return self.real(loop, epoch)


def test_a_killed_finetune_resumes_from_its_last_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(write_image_folder(tmp_path / "data", ["a", "b"], per_class=8, size=32))
    options = parse_train_options(TINY_TRAIN)
    straight = train.finetune("shufflenet_v2_x0_5", options, tmp_path / "straight", "cpu", data)
    killed, resumed_spy = EpochSpy(kill_at=1), EpochSpy()
    monkeypatch.setattr(train, "_one_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        train.finetune("shufflenet_v2_x0_5", options, tmp_path / "run", "cpu", data)
    assert train_state_path(tmp_path / "run", "shufflenet_v2_x0_5").is_file()
    monkeypatch.setattr(train, "_one_epoch", resumed_spy)
    resumed = train.finetune("shufflenet_v2_x0_5", options, tmp_path / "run", "cpu", data)
    assert killed.run == [0] and resumed_spy.run == [1]  # no epoch trained twice
    keys = ("train_loss", "val_top1", "lr", "image_size")
    assert [{k: e[k] for k in keys} for e in resumed.epochs] == [
        {k: e[k] for k in keys} for e in straight.epochs
    ]
    assert resumed.row["train_seconds"] >= resumed.epochs[-1]["epoch_seconds"]


def test_the_best_checkpoint_is_never_replaced_by_a_worse_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(write_image_folder(tmp_path / "data", ["a", "b"], per_class=8, size=32))
    options = parse_train_options({**TINY_TRAIN, "epochs": 3})
    scripted = iter([90.0, None, 50.0])  # epoch 2 dies; after the resume epoch 2 scores 50

    def scripted_epoch(loop: train.Loop, epoch: int) -> dict:
        score = next(scripted)
        if score is None:
            raise KeyboardInterrupt
        loop.step += 1
        return {"epoch": epoch + 1, "train_loss": 1.0, "val_top1": score, "lr": 0.01,
                "epoch_seconds": 0.1, "train_images_per_s": 10.0, "image_size": 32}  # fmt: skip

    monkeypatch.setattr(train, "_one_epoch", scripted_epoch)
    with pytest.raises(KeyboardInterrupt):
        train.finetune("shufflenet_v2_x0_5", options, tmp_path / "run", "cpu", data)
    scripted = iter([50.0, 40.0])
    outcome = train.finetune("shufflenet_v2_x0_5", options, tmp_path / "run", "cpu", data)
    best = torch.load(outcome.row["checkpoint"], weights_only=True)
    assert (best["epoch"], best["val_top1"]) == (1, 90.0)
    assert outcome.row["best_val_acc"] == 90.0 and outcome.row["epochs"] == 3


def test_decode_folder_counts_bombs_as_unreadable_without_pils_warning(tmp_path: Path) -> None:
    write_image_folder(tmp_path, ["a", "b"], per_class=2, size=24)
    bomb_png(tmp_path / "a" / "error-level.png", 30000, 30000)
    bomb_png(tmp_path / "b" / "warning-level.png", 10000, 10000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = imgdata.decode_folder(imgdata.scan_classes(tmp_path), 16)
        assert imgdata.load_image(tmp_path / "b" / "warning-level.png", 16) is None
    assert images.skipped == 2 and images.images.shape == (4, 3, 16, 16)
    assert [str(w.message) for w in caught] == [
        "skipped 2 unreadable or non-image file(s), 2 of them over the decompression-bomb "
        "limit of 89.5 M pixels"
    ]
