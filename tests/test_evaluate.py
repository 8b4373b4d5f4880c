"""Using a trained model: `cnn_jax.inference.load_run` and `python -m experiments.evaluate`.

One tiny run is trained in-process (3 epochs of 40 steps, checkpoints kept at steps 40, 80, 120;
its best validation epoch is not the last), then loaded and evaluated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from conftest import assert_trees_equal, read_records, run_script, tiny_config

from cnn_jax.errors import CnnJaxError

pytestmark = pytest.mark.usefixtures("train_env")
EVALUATE = "experiments.evaluate"
ACCURACY = re.compile(r"accuracy (\d\.\d{4}) \((\d+) of (\d+) examples\)")


@pytest.fixture(scope="module")
def run(tmp_path_factory, train_env) -> Path:
    from cnn_jax.train import train_and_evaluate

    workdir = tmp_path_factory.mktemp("evaluate") / "run"
    config = tiny_config(learning_rate=0.015, num_epochs=3, checkpoint_keep=3)
    assert train_and_evaluate(config, workdir)["status"] == "done"
    return workdir


@pytest.fixture(scope="module")
def model(run):
    from cnn_jax.inference import load_run

    return load_run(run)


@pytest.fixture(scope="module")
def data(model):
    from cnn_jax.config import load_for_config

    return load_for_config(model.config)


def evaluate(*args: str):
    result = run_script(*args, module=EVALUATE, timeout=120)
    return result.returncode, result.stdout, result.stderr


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_load_run_restores_the_best_checkpoint(run, model):
    import jax

    from cnn_jax.inference import load_run
    from cnn_jax.train.checkpoints import Checkpointer
    from cnn_jax.train.state import create_state

    checkpointer = Checkpointer(run)
    try:
        best, steps = checkpointer.best_step(), checkpointer.all_steps()
        template = create_state(model.network, model.config, model.image_shape, 1)
        expected = checkpointer.restore(template, best).params
    finally:
        checkpointer.close()
    assert steps == [40, 80, 120] and model.step == best
    assert (model.image_shape, model.num_classes, model.pixel_scale) == ((28, 28, 1), 10, 255.0)
    assert_trees_equal(jax.device_get(model.params), jax.device_get(expected))
    assert load_run(run, checkpoint="latest").step == 120
    earliest = load_run(run, checkpoint=40)
    assert earliest.step == 40
    assert not np.array_equal(jax.device_get(earliest.params)["conv1"]["kernel"],
                              jax.device_get(model.params)["conv1"]["kernel"])


def test_predictions_equal_network_apply(model, data):
    import jax

    images = data.test_images
    logits = np.asarray(jax.jit(model.network.apply)(model.params, images))
    labels, probabilities = model.predict(images, batch_size=32)  # chunks of 32, last padded
    np.testing.assert_allclose(model.logits(images), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, np.argmax(logits, axis=-1))
    np.testing.assert_allclose(probabilities, np.asarray(jax.nn.softmax(logits)), atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert model.probabilities(images[:0]).shape == (0, 10)
    with pytest.raises(CnnJaxError, match="model takes"):
        model.logits(images[:, :27])


def test_load_run_errors(run, tmp_path):
    from cnn_jax.errors import RunError
    from cnn_jax.inference import load_run
    from cnn_jax.train.workdir import WorkdirLock

    with pytest.raises(RunError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(RunError, match=r"no checkpoint of step 7; .* steps 40, 80, 120"):
        load_run(run, checkpoint=7)
    with WorkdirLock(run), pytest.raises(RunError, match=r"in use by a training run \(pid"):
        load_run(run)  # opening Orbax's manager would remove the checkpoint being saved
    (tmp_path / "config.json").write_text((run / "config.json").read_text())
    with pytest.raises(RunError, match="holds no checkpoint"):
        load_run(tmp_path)


def test_image_shape_from_the_shape_table(run, model, tmp_path):
    from cnn_jax.errors import RunError
    from cnn_jax.inference import run_facts

    config = model.config.copy_and_resolve_references()
    config.dataset = "idx"  # no facts in the registry: the first record of metrics.jsonl
    assert run_facts(run, config) == ((28, 28, 1), 10, 255.0)
    with pytest.raises(RunError, match="shape table"):
        run_facts(tmp_path, config)


def test_script_accuracy_is_the_runs_best_epoch_accuracy(run):
    results = json.loads((run / "results.json").read_text())
    code, out, err = evaluate(f"--workdir={run}", "--checkpoint=best")
    assert code == 0, err
    correct, size = map(int, ACCURACY.search(out).groups()[1:])
    assert (correct, size) == (round(results["test_accuracy_at_best_val"] * 100), 100)
    assert "confusion matrix" in out and len(out.splitlines()) == 1 + 2 + 10
    matrix = np.array([line.split()[1:] for line in out.splitlines()[-10:]], int)
    assert matrix.sum() == size and np.trace(matrix) == correct
    epoch1 = read_records(run, ("epoch",))[0]
    code, out, err = evaluate(f"--workdir={run}", "--checkpoint=40", "--split=validation")
    assert code == 0, err
    correct, size = map(int, ACCURACY.search(out).groups()[1:])
    assert (correct, size) == (round(epoch1["val_accuracy"] * 100), 100)


def test_script_classifies_png_and_npy_files(run, model, data, tmp_path):
    png, npy = tmp_path / "digit.png", tmp_path / "digit.npy"
    matplotlib.image.imsave(png, data.test_images[0, :, :, 0], cmap="gray", vmin=0, vmax=1)
    np.save(npy, data.test_images[1])
    code, out, err = evaluate(f"--workdir={run}", f"--images={png},{npy}", "--top=2")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    from PIL import Image

    stored = np.asarray(Image.open(png).convert("L"), np.float32)[None, ..., None] / 255
    for line, path, image in zip(lines, (png, npy), (stored, data.test_images[1:2]),
                                 strict=True):
        labels, probabilities = model.predict(image)
        label = int(labels[0])
        assert line.startswith(f"{path}: label {label} (probability "
                               f"{probabilities[0, label]:.4f}); top 2: {label}: ")
        assert len(re.findall(r"\d: \d\.\d{4}", line.split("top 2:")[1])) == 2


def test_bad_inputs_exit_2_with_one_error_line(run, tmp_path):
    wrong_size, rgb = tmp_path / "big.npy", tmp_path / "rgb.npy"
    np.save(wrong_size, np.zeros((32, 32), np.float32))
    np.save(rgb, np.zeros((28, 28, 3), np.uint8))
    cases = {
        (): "--workdir is required",
        (f"--workdir={tmp_path}",): "is not a run folder (no config.json)",
        (f"--workdir={run}", "--checkpoint=12345"): "no checkpoint of step 12345",
        (f"--workdir={run}", "--top=0"): "--top=0",
        (f"--workdir={run}", "--top=11"): "the model has 10 classes",
        (f"--workdir={run}", f"--images={wrong_size}"): "image of shape 32×32, the model takes "
                                                         "28×28×1",
        (f"--workdir={run}", f"--images={rgb},{tmp_path / 'none.png'}"): "none.png: no such file",
    }
    for args, message in cases.items():
        code, out, err = evaluate(*args)
        lines = error_lines(err)
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, code, err)
        assert "Traceback" not in err and not out.strip(), args


def test_script_classifies_a_folder_and_an_npy_stack_as_the_api_does(run, model, data, tmp_path):
    """Issue 21: --images takes a folder of image files and an (N, 28, 28[, 1]) .npy stack; each
    image's label is model.predict's on the same pixels."""
    folder = tmp_path / "digits"
    folder.mkdir()
    for index in (2, 3):
        np.save(folder / f"d{index}.npy", data.test_images[index])
    stack = tmp_path / "stack.npy"
    np.save(stack, data.test_images[4:9, :, :, 0])  # (5, 28, 28): grey, no channel axis
    code, out, err = evaluate(f"--workdir={run}", f"--images={folder},{stack}", "--top=1")
    assert code == 0, err
    expected = [str(folder / "d2.npy"), str(folder / "d3.npy"),
                *(f"{stack}[{i}]" for i in range(5))]
    labels, _ = model.predict(np.concatenate([data.test_images[2:4], data.test_images[4:9]]))
    lines = out.splitlines()
    assert [line.split(": label")[0] for line in lines] == expected
    assert [int(line.split(": label ")[1].split()[0]) for line in lines] == labels.tolist()
    assert "inverted" not in err


def test_inverted_images_get_a_one_line_hint(run, data, tmp_path):
    stack = tmp_path / "inverted.npy"
    np.save(stack, 1.0 - data.test_images[:2])  # dark digits on white
    code, _, err = evaluate(f"--workdir={run}", f"--images={stack}")
    hints = [line for line in err.splitlines() if line.startswith("hint:")]
    assert code == 0 and len(hints) == 1 and "inverted" in hints[0], err


def test_confusion_matrix_of_a_hand_worked_case():
    from cnn_jax.evaluation import confusion_matrix, format_confusion

    labels, predicted = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2]
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(confusion_matrix(labels, predicted, 3), expected)
    lines = format_confusion(expected).splitlines()
    assert lines[1].split() == ["true\\pred", "0", "1", "2"]
    assert [line.split() for line in lines[2:]] == [["0", "1", "1", "0"], ["1", "0", "1", "0"],
                                                    ["2", "1", "0", "2"]]


def test_score_split_is_the_runs_validation_accuracy(run, model):
    from cnn_jax.evaluation import score_split

    score = score_split(model, "validation", batch_size=64)
    best = json.loads((run / "results.json").read_text())
    epoch = read_records(run, ("epoch",))[best["best_epoch"] - 1]
    assert (score.correct, score.total) == (round(epoch["val_accuracy"] * 100), 100)
    assert score.confusion.sum() == score.total and np.trace(score.confusion) == score.correct
