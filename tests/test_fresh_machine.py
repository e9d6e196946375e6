"""A fresh machine: data sets by name, a run that says how it ended, predict past bad files."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from fixtures.images import write_image_folder
from typer.testing import CliRunner, Result

import bench.runs.runner
from bench.cli.app import app
from bench.cli.run_outcome import resume_command
from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.runs.folder import load_run
from bench.runs.suite import load_suite
from bench.train import data as imgdata
from bench.train.checkpoints import checkpoint_paths, predict_images, save_checkpoint
from bench.train.datasets import DATA_VARIABLE, DATASETS, datasets_cache, locate_data
from bench.train.options import TrainOptions

SHIPPED = Path(__file__).resolve().parents[1] / "suites"
TINY = "g1:c1=4,c2=4,blocks=1,size=8"


def invoke(*args: str) -> Result:
    """Run the bench app with these arguments."""
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    """Text with rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache and no BENCH_DATA: the machine of a new user (the cache folder)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    return tmp_path / "xdg" / "bench" / "datasets"


def flower_archive(tmp_path: Path) -> Path:
    """A small .tgz shaped like TensorFlow's flower_photos: a wrapper folder of class folders."""
    root = write_image_folder(tmp_path / "src" / "flower_photos", ["daisy", "rose"], per_class=2)
    archive = tmp_path / "flower_photos.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="flower_photos")
    return archive


def test_shipped_flower_suites_name_the_data_set() -> None:
    for name in ("flowers", "flowers-quick"):
        cases = [c for c in load_suite(SHIPPED / f"{name}.yaml").cases if c.kind == "finetune"]
        assert cases and {dict(c.train)["data"] for c in cases} == {"flowers"}


def test_missing_data_set_says_which_command_to_run(no_data: Path) -> None:
    with pytest.raises(BenchError) as caught:
        locate_data("flowers")
    message = str(caught.value)
    assert "run `bench data flowers`" in message and str(no_data) in message
    assert "`bench data flowers --from ARCHIVE`" in message and "--data PATH" in message
    assert locate_data("some/folder") == "some/folder"  # not a name: a path, unchanged


def test_bench_data_from_archive_fills_the_cache_suites_look_in(
    no_data: Path, tmp_path: Path
) -> None:
    result = invoke("data", "flowers", "--from", str(flower_archive(tmp_path)))
    assert result.exit_code == 0, result.output
    assert locate_data("flowers") == str(no_data / "flowers")
    root = imgdata.resolve_data_root(locate_data("flowers"))
    assert sorted(p.name for p in root.iterdir()) == ["daisy", "rose"]
    assert not list(no_data.glob(".*partial"))  # unpacked aside, then moved in
    again = invoke("data", "flowers")  # no download: it is there
    assert again.exit_code == 0 and "already in" in flat(again.stdout)


def test_bench_data_variable_comes_before_the_cache(
    no_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_data / "flowers").mkdir(parents=True)
    shared = tmp_path / "shared"
    shared.mkdir()
    archive = flower_archive(tmp_path).rename(shared / "flowers-128.tar")
    monkeypatch.setenv(DATA_VARIABLE, str(shared))
    assert locate_data("flowers") == str(archive)
    monkeypatch.setenv(DATA_VARIABLE, str(tmp_path / "empty"))
    assert locate_data("flowers") == str(no_data / "flowers")
    assert DATASETS["flowers"].url.startswith("https://")


def finetune_suite(tmp_path: Path) -> Path:
    """A suite with one measured case and one fine-tune naming the flowers data set."""
    path = tmp_path / "ft.yaml"
    path.write_text(
        "name: ft\ndefaults: {threads: 1, budget_s: 0.1, metrics: [count]}\ncases:\n"
        f"  - name: cost\n    models: ['{TINY}']\n"
        f"  - name: tune\n    kind: finetune\n    models: ['{TINY}']\n"
        "    train: {data: flowers, epochs: 1}\n"
    )
    return path


def test_run_whose_fine_tune_finds_no_data_exits_non_zero(no_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ("run", str(finetune_suite(tmp_path)), "--out", str(out), "--no-calibrate")
    result = invoke(*args, "--no-progress")
    assert result.exit_code == 2, result.output
    text = flat(result.stderr)
    assert "1 fine-tune case(s) failed" in text and "run `bench data flowers`" in text
    rows = load_run(out).rows.set_index("case")
    assert rows.loc["cost", "status"] == "ok" and rows.loc["tune", "status"] == "error"


def test_ctrl_c_prints_the_cases_kept_and_the_resume_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = []

    def interrupted_second(case, ctx):
        if measured:
            raise KeyboardInterrupt
        measured.append(case.case_id)
        return bench.runs.runner.Measurement({"params": 1})

    monkeypatch.setattr(bench.runs.runner, "measure_case", interrupted_second)
    suite = finetune_suite(tmp_path)
    out = tmp_path / "run"
    result = invoke("run", str(suite), "--out", str(out), "--no-calibrate", "--quick")
    assert result.exit_code == 130, result.output
    expected = resume_command(str(suite), out, {"--quick": True})
    assert f"interrupted: 1 finished case(s) kept in {out}" in flat(result.stderr)
    assert expected in flat(result.stderr) and expected.endswith(f"--quick --resume {out}")
    assert len(load_run(out).rows) == 1


def test_resume_command_repeats_the_case_selection() -> None:
    options = {"--filter": "g1*", "--runtime": ["eager", "onnxruntime"], "--quick": False}
    command = resume_command("my suite.yaml", Path("results/x"), options)
    assert command == (
        "bench run 'my suite.yaml' --filter 'g1*' --runtime eager --runtime onnxruntime "
        "--resume results/x"
    )


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """An untrained two-class checkpoint (predictions need not be right, only made)."""
    spec = "shufflenet_v2_x0_5"
    paths = checkpoint_paths(tmp_path / "ckpt", spec)
    paths[0].parent.mkdir(parents=True)
    model = build_model(spec, num_classes=2)
    record = {"epoch": 1, "val_top1": 50.0}
    save_checkpoint(paths, model, ("daisy", "rose"), TrainOptions(image_size=32), spec, record)
    return paths[0]


def test_predict_skips_unreadable_files_with_a_count(checkpoint: Path, tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "images", ["a"], per_class=2)
    (folder / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    result = invoke("predict", "--checkpoint", str(checkpoint), "--json", str(folder))
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable or non-image file(s) of 3" in flat(result.stderr)
    assert result.stdout.count('"class"') == 2
    with pytest.raises(BenchError, match="none of the 1 file"):
        model, meta = build_model("shufflenet_v2_x0_5", num_classes=2), {"classes": ["a", "b"]}
        meta["eval"] = {"image_size": 32, "resize": 36}
        predict_images(model, meta, [folder / "a" / "broken.jpg"])


def test_datasets_cache_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert datasets_cache() == tmp_path / "bench" / "datasets"
