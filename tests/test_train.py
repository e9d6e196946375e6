"""Fine-tunes: options, schedule, end-to-end epoch, checkpoints, predict, weights, DDP."""

from __future__ import annotations

import json
import socket
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torchvision
from fixtures.flowers import ARCHIVE, extract_subset
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.train import TrainOptions, finetune, load_checkpoint, parse_train_options
from bench.train import loop as train
from bench.train.checkpoints import predict_images

TINY = {
    "image_size": 48,
    "batch": 8,
    "epochs": 1,
    "lr": 0.01,
    "val_fraction": 0.2,
    "workers": 1,
    "threads": 1,
}


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Thirty real flower photos, ten in each of three classes."""
    if not ARCHIVE.is_file():
        pytest.skip(f"shared flower archive {ARCHIVE} is absent")
    return extract_subset(tmp_path_factory.mktemp("flowers"), per_class=10)


@pytest.fixture(scope="module")
def trained(subset: Path, tmp_path_factory: pytest.TempPathFactory) -> train.FinetuneOutcome:
    """One epoch of shufflenet_v2_x0_5 on the subset."""
    options = parse_train_options(TINY, "test")
    return finetune(
        "shufflenet_v2_x0_5", options, tmp_path_factory.mktemp("run"), "cpu", str(subset)
    )


def test_parse_train_options_accepts_and_converts() -> None:
    options = parse_train_options(
        {"optimizer": "SGD", "lr": 1, "progressive": [64, 96], "tta_flip": True}, "s.cases[0].train"
    )
    assert options.optimizer == "sgd" and options.lr == 1.0
    assert options.progressive == (64, 96) and options.tta_flip is True
    assert options == parse_train_options(
        dict(optimizer="sgd", lr=1.0, progressive=(64, 96), tta_flip=True)
    )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"optimiser": "sgd"}, r"s\.train\.optimiser: .*expected a key among data, "),
        ({"optimizer": "lion"}, r"s\.train\.optimizer: 'lion' .* one of adam, adamw, sgd"),
        ({"schedule": "step"}, r"s\.train\.schedule: 'step' .* one of cosine, onecycle, none"),
        ({"freeze": "all"}, r"s\.train\.freeze: 'all' .* one of none, backbone"),
        ({"batch": 0}, r"s\.train\.batch: 0 .* positive integer"),
        ({"lr": "fast"}, r"s\.train\.lr: 'fast' .* non-negative number"),
        ({"val_fraction": 1.5}, r"s\.train\.val_fraction: 1\.5 .* between 0 and 1"),
        ({"progressive": [96, "x"]}, r"s\.train\.progressive: .* list of positive image sizes"),
        ({"channels_last": "yes"}, r"s\.train\.channels_last: 'yes' .* true or false"),
    ],
)
def test_parse_train_options_rejects_bad_input(mapping: dict, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        parse_train_options(mapping, "s.train")


def test_lr_schedule_shapes() -> None:
    assert train.lr_factor(0.0, "onecycle", 0.01, 0.2) == pytest.approx(0.04)
    assert train.lr_factor(0.2, "onecycle", 0.01, 0.2) == pytest.approx(1.0)
    assert train.lr_factor(1.0, "onecycle", 0.01, 0.2) == pytest.approx(0.01)
    assert train.lr_factor(0.0, "cosine", 0.05, 0.2) == pytest.approx(1.0)
    assert train.lr_factor(0.5, "cosine", 0.05, 0.2) == pytest.approx(0.525)
    assert train.lr_factor(0.7, "none", 0.05, 0.2) == 1.0


@pytest.mark.parametrize(
    ("budget_schedule", "step", "now", "expected"),
    [(False, 10, 50.0, 0.1), (True, 10, 50.0, 0.5), (True, 80, 50.0, 0.8), (True, 10, 500.0, 1.0)],
)
def test_progress_follows_the_budget_with_a_fake_clock(
    monkeypatch, budget_schedule: bool, step: int, now: float, expected: float
) -> None:
    monkeypatch.setattr(train.time, "perf_counter", lambda: now)
    options = TrainOptions(time_budget_s=100.0, budget_schedule=budget_schedule)
    loop = train.Loop(None, None, None, options, None, "cpu", False, 10, 100, step, started=0.0)
    assert loop.progress() == pytest.approx(expected)


def test_progressive_sizes_split_progress_evenly() -> None:
    options = TrainOptions(progressive=(64, 96, 128), image_size=128)
    assert [train.size_at(e / 6, options) for e in range(6)] == [64, 64, 96, 96, 128, 128]
    assert train.size_at(1.0, options) == 128
    assert train.size_at(0.5, TrainOptions(image_size=112)) == 112


def test_one_epoch_end_to_end(trained: train.FinetuneOutcome) -> None:
    row, epochs = trained.row, trained.epochs
    assert len(epochs) == 1 and row["epochs"] == 1
    assert set(epochs[0]) >= {
        "epoch",
        "train_loss",
        "val_top1",
        "lr",
        "epoch_seconds",
        "train_images_per_s",
        "image_size",
    }
    assert row["n_train"] + row["n_val"] == 30 and row["n_val"] == 6
    assert 0.0 <= row["best_val_acc"] <= 100.0 and row["train_seconds"] > 0
    assert epochs[0]["train_loss"] > 0 and row["images_per_s_train"] > 0
    assert json.loads(Path(row["class_indices"]).read_text()) == {
        "0": "daisy",
        "1": "dandelion",
        "2": "rose",
    }


def test_checkpoint_reload_and_predict_round_trip(
    trained: train.FinetuneOutcome, subset: Path, tmp_path: Path
) -> None:
    model, meta = load_checkpoint(trained.row["checkpoint"])
    assert meta["classes"] == ["daisy", "dandelion", "rose"]
    assert meta["eval"]["image_size"] == 48 and meta["spec"] == "shufflenet_v2_x0_5"
    photos = sorted((subset / "rose").iterdir())[:2]
    direct = predict_images(model, meta, photos)
    assert sum(direct[0]["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    args = [
        "predict",
        "--checkpoint",
        trained.row["checkpoint"],
        "--json",
        "--annotate",
        str(tmp_path / "ann"),
        *map(str, photos),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [p["class"] for p in payload] == [d["class"] for d in direct]
    assert payload[0]["probs"] == pytest.approx(direct[0]["probs"], abs=1e-5)
    assert len(list((tmp_path / "ann").glob("*.png"))) == 2
    table = CliRunner().invoke(
        app, ["predict", "--checkpoint", trained.row["checkpoint"], str(subset / "rose")]
    )
    assert table.exit_code == 0 and "predictions" in table.stdout


def test_predict_bad_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", "--checkpoint", str(tmp_path / "no.pt"), "x.jpg"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "no.pt' does not exist" in text and "Traceback" not in text


def test_same_seed_reruns_identically(
    trained: train.FinetuneOutcome, subset: Path, tmp_path: Path
) -> None:
    again = finetune("shufflenet_v2_x0_5", parse_train_options(TINY), tmp_path, "cpu", str(subset))
    keys = ("train_loss", "val_top1", "lr", "image_size")
    assert [{k: e[k] for k in keys} for e in again.epochs] == [
        {k: e[k] for k in keys} for e in trained.epochs
    ]


def test_time_budget_stops_training(subset: Path, tmp_path: Path) -> None:
    options = parse_train_options({**TINY, "image_size": 32, "epochs": 3, "time_budget_s": 1e-6})
    outcome = finetune("shufflenet_v2_x0_5", options, tmp_path, "cpu", str(subset))
    assert outcome.row["epochs"] == 1 and outcome.row["stopped_by_budget"] is True


def test_bf16_channels_last_progressive_and_tta_train(subset: Path, tmp_path: Path) -> None:
    mapping = {
        **TINY,
        "image_size": 32,
        "progressive": [24, 32],
        "epochs": 2,
        "amp": "bf16",
        "channels_last": True,
        "tta_flip": True,
        "optimizer": "sgd",
        "schedule": "cosine",
    }
    outcome = finetune(
        "shufflenet_v2_x0_5", parse_train_options(mapping), tmp_path, "cpu", str(subset)
    )
    assert [e["image_size"] for e in outcome.epochs] == [24, 32]
    assert all(0 < e["train_loss"] < 10 for e in outcome.epochs)
    assert outcome.epochs[0]["lr"] == pytest.approx(0.01)


def test_torchvision_state_dict_loads_with_head_replaced(tmp_path: Path) -> None:
    reference = torchvision.models.shufflenet_v2_x0_5(weights=None)
    torch.save(reference.state_dict(), tmp_path / "tv.pth")
    options = TrainOptions(weights=str(tmp_path / "tv.pth"), freeze="backbone")
    with pytest.warns(UserWarning, match=r"loaded 336 tensors, skipped \['fc.bias', 'fc.weight'\]"):
        model, report = train.build_finetune_model("shufflenet_v2_x0_5", 3, options)
    assert report["skipped"] == ["fc.bias", "fc.weight"] == report["missing"]
    assert torch.equal(model.state_dict()["conv1.0.weight"], reference.conv1[0].weight)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]


def test_torchvision_weights_come_only_from_the_hub_cache(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    options = TrainOptions(weights="torchvision")
    with pytest.raises(BenchError, match=r"shufflenetv2_x0\.5-f707e7126e\.pth is absent"):
        train.build_finetune_model("shufflenet_v2_x0_5", 3, options)
    with pytest.raises(BenchError, match="no pretrained weights for 'shufflenet_v1_g3_x1_0'"):
        train.build_finetune_model("shufflenet_v1_g3_x1_0", 3, options)


def test_tensorboard_missing_warns_once(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train._tensorboard(str(tmp_path)) is None
    assert ["tensorboard is not installed" in str(w.message) for w in caught] == [True]


def _free_port() -> int:
    """An unused local TCP port for the process group."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, port: int, subset: str, out: str) -> None:
    """One rank of the 2-process CPU run: env as torchrun sets it, then finetune."""
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    options = parse_train_options({**TINY, "image_size": 32, "batch": 4})
    outcome = finetune("shufflenet_v2_x0_5", options, Path(out) / "run", "cpu", subset)
    payload = {"row": outcome.row, "epochs": outcome.epochs, "main": train.is_main_process()}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(payload))
    torch.distributed.destroy_process_group()


def test_two_process_ddp_run(subset: Path, tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(_free_port(), str(subset), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["main"] for r in ranks] == [True, False]
    assert ranks[0]["row"]["world_size"] == 2
    assert ranks[0]["epochs"][0]["val_top1"] == ranks[1]["epochs"][0]["val_top1"]
    assert ranks[0]["epochs"][0]["train_loss"] == ranks[1]["epochs"][0]["train_loss"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "shufflenet_v2_x0_5.class_indices.json",
        "shufflenet_v2_x0_5.pt",
    ]
