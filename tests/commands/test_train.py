import pytest
import yaml

from stgan.cli import main
from tests.conftest import run_cli, tiny_pipeline


def test_dry_run_prints_resolved_config(pipeline, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                str(pipeline),
                "--logdir",
                str(tmp_path / "r"),
                "--dry-run",
                "--set",
                "optim.lr_g=2e-4",
            ]
        )
        == 0
    )
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["optim"]["lr_g"] == 2e-4
    assert resolved["data"]["variables"] == {
        "tas": {"transform": "standardize"},
        "pr": {"transform": "standardize"},
    }
    assert not (tmp_path / "r").exists()


def test_train_writes_checkpoints(pipeline, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                str(pipeline),
                "--logdir",
                str(tmp_path / "r"),
                "--device",
                "cpu",
                "--max-steps",
                "2",
            ]
        )
        == 0
    )
    assert (tmp_path / "r" / "checkpoints" / "ckpt_00000002.pt").is_file()
    assert "tensorboard --logdir" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--set", "model.generator.name=unet"],
            "'unet' is not allowed; choose one of 'convgru', 'convlstm', 'conv3d'",
        ),
        (["--set", "loss.name=hingee"], "did you mean 'hinge'?"),
        (["--set", "optim.lr_gg=1"], "optim.lr_gg: unknown key; did you mean 'lr_g'?"),
        (["--set", "model.generator.up_stages=4"], "not divisible by 16"),
        (["--device", "cuda"], "no CUDA device is available here"),
    ],
)
def test_bad_input_is_one_line(pipeline, tmp_path, extra, message):
    if "cuda" in extra:
        pytest.importorskip("torch").cuda.is_available() and pytest.skip("a GPU is present")
    result = run_cli("train", str(pipeline), "--logdir", str(tmp_path / "r"), *extra)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("stgan: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_corrupt_checkpoint_on_resume(pipeline, tmp_path):
    logdir = tmp_path / "r"
    assert (
        main(
            ["train", str(pipeline), "--logdir", str(logdir), "--device", "cpu", "--max-steps", "3"]
        )
        == 0
    )
    (logdir / "checkpoints" / "ckpt_00000003.pt").write_bytes(b"garbage")
    result = run_cli("train", str(pipeline), "--logdir", str(logdir), "--resume")
    assert result.returncode == 2 and "no valid checkpoint" in result.stderr


def test_grid_not_divisible_suggests_crop(tmp_path):
    path = tiny_pipeline(tmp_path, model={"generator": {"name": "convgru", "up_stages": 2}})
    raw = yaml.safe_load(path.read_text())
    raw["data"]["crop"] = {"y": [0, 6]}
    path.write_text(yaml.safe_dump(raw))
    result = run_cli("train", str(path), "--logdir", str(tmp_path / "r"))
    assert result.returncode == 2 and "crop" in result.stderr
