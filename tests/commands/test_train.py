import pytest
import yaml

from stgan.cli import main
from tests.conftest import make_dataset, run_cli, tiny_pipeline


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
        (["--set", "optim.lr_g=nan"], "optim.lr_g: NaN is not a value; give a number"),
        (["--set", "optim.lr_d=inf"], "optim.lr_d: inf must be a finite number > 0"),
        (["--set", "optim.lr_d=-1e-4"], "optim.lr_d: -0.0001 must be a finite number > 0"),
        (
            ["--set", "optim.betas_g=[1.5, 0.9]"],
            "optim.betas_g: [1.5, 0.9] must be two numbers in [0, 1)",
        ),
        (["--set", "optim.betas_d=[0.0, -0.1]"], "optim.betas_d: [0.0, -0.1] must be two numbers"),
        (["--set", "model.generator.up_stages=7"], "up_stages: 7 is out of range; use 0 to 6"),
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


def test_a_grid_not_divisible_by_the_models_factor_trains(tmp_path):
    """6x8 under up_stages 2 (factor 4): generated on 8x8 and cropped back, not refused."""
    path = tiny_pipeline(tmp_path, model={"generator": {"name": "convgru", "up_stages": 2}})
    raw = yaml.safe_load(path.read_text())
    raw["data"]["crop"] = {"y": [0, 6]}
    path.write_text(yaml.safe_dump(raw))
    logdir = tmp_path / "r"
    assert (
        main(["train", str(path), "--logdir", str(logdir), "--device", "cpu", "--max-steps", "2"])
        == 0
    )
    assert (logdir / "checkpoints" / "ckpt_00000002.pt").exists()


@pytest.mark.parametrize("kind", ["binary", "directory"])
def test_a_pipeline_that_is_not_a_yaml_file_is_one_line(tmp_path, kind):
    path = tmp_path / "pipeline.yaml"
    if kind == "binary":
        path.write_bytes(bytes(range(256)))
        message = "pipeline.yaml: not a text file (byte 128 is not UTF-8); give a YAML file"
    else:
        path.mkdir()
        message = "pipeline.yaml: is a directory, not a YAML file"
    result = run_cli("train", str(path), "--logdir", str(tmp_path / "r"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("stgan: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_grid_smaller_than_the_models_factor_trains(tmp_path):
    """8x8 coarsened by 5 is 1x1, below the generator's factor 2: replicate-padded, trained."""
    path = tiny_pipeline(tmp_path)
    make_dataset(nt=40, ny=8, nx=8, variables=("tas", "pr")).to_netcdf(tmp_path / "data.nc")
    raw = yaml.safe_load(path.read_text())
    raw["data"]["coarsen"] = 5
    path.write_text(yaml.safe_dump(raw))
    logdir = tmp_path / "r"
    assert (
        main(["train", str(path), "--logdir", str(logdir), "--device", "cpu", "--max-steps", "2"])
        == 0
    )
    assert (logdir / "checkpoints" / "ckpt_00000002.pt").exists()
