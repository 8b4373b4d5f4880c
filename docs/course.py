# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Convolutional networks, slide by slide
#
# The lecture "Machine Learning and Images in Python" (after chapter 6 of Nielsen's *Neural
# Networks and Deep Learning*) in ten steps, each a few calls of `cnn_jax`. This notebook is
# generated from `docs/course.py` (the reviewed source): `make notebook-sync` rebuilds and runs
# it, `make notebook` opens it in Jupyter.
#
# Run time, top to bottom, on 2 CPU cores shared with another training run (load average 5–8):
# about 2 minutes (113–123 s measured), 70–90 s of it for the 4 epochs of step 8; the last cell
# prints what this run took. `CNN_JAX_NOTEBOOK_QUICK=1` trains on fewer images and epochs
# (about 50 s; the tests use it): every exact number holds in both modes, only the accuracies
# change.

# %%
# %matplotlib inline
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

QUICK = os.environ.get("CNN_JAX_NOTEBOOK_QUICK") == "1"  # fewer images/epochs in steps 4, 8, 9
START = time.perf_counter()


def repository_root() -> Path:
    """The cnn_jax repository (its configs/ are read below): the folder holding cnn_jax/ and
    configs/ at or above the working directory, else the one of the installed package (an
    editable `pip install -e .`), else an error that says what to do."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "cnn_jax").is_dir() and (folder / "configs").is_dir():
            return folder
    spec = importlib.util.find_spec("cnn_jax")
    if spec is not None and spec.origin is not None:
        folder = Path(spec.origin).resolve().parent.parent
        if (folder / "configs").is_dir():
            return folder
    raise FileNotFoundError(
        "this notebook reads the configs/ of the cnn_jax repository: start it from inside a "
        "clone (cd cnn_jax), or install the clone with `pip install -e .`")


ROOT = repository_root()
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="cnn_jax_course_"))  # the runs of this notebook, removed last
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from IPython.display import Image, Markdown, display  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import cnn_jax  # noqa: E402
from cnn_jax import Conv, Dense, Network, ShapeError, count_params, format_table, shape_table  # noqa: E402,E501
from cnn_jax.compilation_cache import enable_compilation_cache  # noqa: E402
from cnn_jax.data import load_dataset  # noqa: E402
from cnn_jax.inference import load_run  # noqa: E402
from cnn_jax.markdown import markdown_table  # noqa: E402
from cnn_jax.plots import _feature_maps_figure, _kernels_figure, _learning_curves_figure  # noqa: E402,E501
from cnn_jax.summary import format_shape  # noqa: E402
from cnn_jax.sweep import run_sweep  # noqa: E402
from cnn_jax.sweep.bases import small_base, sweep_config  # noqa: E402
from cnn_jax.sweep.report import configurations_table  # noqa: E402
from cnn_jax.sweep.results import write_results  # noqa: E402
from cnn_jax.train import train_and_evaluate  # noqa: E402
from cnn_jax.train.logs import read_jsonl  # noqa: E402
from cnn_jax.train.results import epoch_records  # noqa: E402

enable_compilation_cache()  # $CNN_JAX_COMPILATION_CACHE, else ~/.cache/cnn_jax/jax


def config_file(name):
    """configs/<name>.py's get_config() (as tests/conftest.py::load_config_file)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
print(f"quick mode: {QUICK}; {os.cpu_count()} CPU cores; load average (1, 5, 15 min): {load}")

# %% [markdown]
# ## 1. Why not fully connected?
#
# A fully connected layer joins every hidden neuron to all 28×28 = 784 input pixels: 784 → 30
# neurons is 784·30 weights + 30 biases. A convolutional layer joins each hidden neuron to a
# 5×5 *local receptive field* only, and all neurons of a *feature map* share one 5×5 kernel and
# one bias: 5·5 + 1 = 26 parameters per map, 20·26 = 520 for 20 maps, whatever the image size.

# %% tags=["params"]
SHAPE = (28, 28, 1)  # height × width × channels of an MNIST digit
layers = {
    "fully connected 784 → 30": Network.from_layers([Dense(30, activation="sigmoid")]),
    "one shared 5×5 feature map": Network.from_layers([Conv(1, 5, activation="sigmoid")]),
    "20 shared 5×5 feature maps": Network.from_layers([Conv(20, 5, activation="sigmoid")]),
}
rows = []
for name, net in layers.items():
    count = count_params(net.init(jax.random.key(0), SHAPE))  # scalars in the parameter pytree
    (row,) = shape_table(net, SHAPE)
    assert count == row.params
    rows.append([name, row.detail, format_shape(row.output_shape), f"{count:,}"])
display(Markdown(markdown_table(["layer", "type", "output", "parameters"], rows)))

# %% [markdown]
# ## 2. A local receptive field
#
# Hidden neuron (j, k) sees the 5×5 field whose top-left pixel is (j, k):
#
# $$\sigma\Big(b + \sum_{l=0}^{4} \sum_{m=0}^{4} w_{l,m}\, a_{j+l,\,k+m}\Big)$$
#
# with σ the sigmoid, w the 5×5 shared weights, b the shared bias, a the input activations
# (pixels). One field of a real test digit, by hand with NumPy and by the library's conv layer:

# %% tags=["neuron"]
data = load_dataset("mnist", validation_size=10000)  # the book's split (prepared on first use)
print(data.describe())
digit, label = data.test_images[0], int(data.test_labels[0])  # (28, 28, 1), pixels k/256
one_map = layers["one shared 5×5 feature map"]
kernel = one_map.init(jax.random.key(1), SHAPE)["conv1"]["kernel"]  # (5, 5, 1, 1)
params = {"conv1": {"kernel": kernel, "bias": jnp.array([0.1])}}
w, b = np.asarray(kernel, np.float64)[:, :, 0, 0], 0.1

j, k = 8, 10
a = digit[j:j + 5, k:k + 5, 0].astype(np.float64)  # the field: rows j..j+4, columns k..k+4
by_hand = 1 / (1 + np.exp(-(b + np.sum(w * a))))
by_library = float(one_map.apply(params, digit[None])[0, j, k, 0])  # Conv(1, 5, "sigmoid")
by_conv2d = float(jax.nn.sigmoid(cnn_jax.conv2d(digit[None], kernel, params["conv1"]["bias"]))
                  [0, j, k, 0])
print(f"neuron ({j}, {k}) by hand (NumPy):       {by_hand:.7f}")
print(f"neuron ({j}, {k}) by Conv(1, 5, sigmoid): {by_library:.7f}")
print(f"neuron ({j}, {k}) by sigmoid(conv2d):     {by_conv2d:.7f}")
np.testing.assert_allclose(by_hand, [by_library, by_conv2d], rtol=1e-5)

fig = Figure(figsize=(8, 2.8), layout="constrained")
left, middle, right = fig.subplots(1, 3)
left.imshow(digit[:, :, 0], cmap="gray")
left.add_patch(Rectangle((k - 0.5, j - 0.5), 5, 5, fill=False, edgecolor="red", linewidth=2))
left.set_title(f"test digit ({label}), field at ({j}, {k})", fontsize=9)
middle.imshow(a, cmap="gray", vmin=0, vmax=1)
middle.set_title("a: the 5×5 field", fontsize=9)
limit = np.abs(w).max()
right.imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit)
right.set_title("w: the 5×5 weights", fontsize=9)
for ax in (left, middle, right):
    ax.set(xticks=[], yticks=[])
display(fig)

# %% [markdown]
# ## 3. Sliding the field: stride, and the size of a feature map
#
# Sliding the field one pixel at a time (stride 1) over 28×28 gives 24×24 hidden neurons; with
# stride 2 the field jumps two pixels and the map is 12×12. The size relation:
#
# $$\text{out} = \Big\lfloor \frac{\text{in} + 2\cdot\text{pad} - \text{dilation}\cdot(k-1) - 1}
# {\text{stride}} \Big\rfloor + 1$$

# %% tags=["sliding"]
maps = {}
for stride in (1, 2):
    net = Network.from_layers([Conv(1, 5, stride=stride, activation="sigmoid")])
    print(f"stride {stride}:\n{format_table(shape_table(net, SHAPE))}\n")
    maps[f"stride {stride}"] = net.apply(params, digit[None])[0]  # the same weights, slid
_feature_maps_figure(maps, digit, title="one feature map (the same 5×5 weights), stride 1 and 2")

# %% [markdown]
# A kernel larger than the image, or a stride that shrinks a map below the next kernel, has no
# output size ≥ 1: the library refuses it, by formula, before anything is computed.

# %% tags=["impossible"]
for impossible in ([Conv(1, 29)], [Conv(1, 5, stride=8), Conv(1, 5)]):
    try:
        Network.from_layers(impossible).plan(SHAPE)
    except ShapeError as error:
        print(f"ShapeError: {error}\n")

# %% [markdown]
# ## 4. Shared weights → feature maps
#
# Every neuron of a map uses the same weights and bias, so a map detects one feature anywhere
# in the image. The course network `configs/course_3maps.py`: 3 maps of 5×5 (3×24×24) → 2×2 max
# pooling (3×12×12) → 10 softmax outputs, σ activations, trained on the 5,000 embedded digits
# (10 epochs; 2 in quick mode). Its 3 feature maps of the digit above:

# %% tags=["course"]
course = config_file("course_3maps")
course.progress = course.plots = False
if QUICK:
    course.num_epochs = 2
result = train_and_evaluate(course, WORK / "course_3maps")
print(f"\ntest accuracy at the best validation epoch ({result['best_epoch']}): "
      f"{100 * result['test_accuracy_at_best_val']:.1f}%")
model = load_run(WORK / "course_3maps")  # the best-validation checkpoint
outputs = model.network.activations(model.params, digit[None])
(predicted,), (probabilities,) = model.predict(digit[None])
feature_maps = np.asarray(outputs["conv1"][0])  # 24×24×3
print("feature maps:", format_shape(feature_maps.shape))
_feature_maps_figure({"conv1": feature_maps}, digit, label=label,
                     prediction=(int(predicted), float(probabilities[predicted])))

# %% [markdown]
# ## 5. What the maps detect: the kernels
#
# The trained 5×5 kernels, one colour per weight (red excites, blue inhibits, white is 0), as
# on the slide:

# %%
_kernels_figure(model.params["conv1"]["kernel"], title="course network conv1", columns=3)

# %% [markdown]
# ## 6. Pooling
#
# A pooling layer condenses each 2×2 region of a map into one value: its maximum (max pooling)
# or its mean (average pooling), keeping *whether* a feature is there and dropping *where*
# exactly. The lecture's 4×4 example:

# %% tags=["pooling"]
example = np.array([[0, 2, 2, 1], [4, 3, 0, 1], [2, 1, 3, 2], [3, 1, 2, 0]], np.float32)
x = example[None, :, :, None]  # (batch, height, width, maps)
maxed = np.asarray(cnn_jax.pool2d(x, "max", (2, 2), (2, 2)))[0, :, :, 0]
averaged = np.asarray(cnn_jax.pool2d(x, "avg", (2, 2), (2, 2)))[0, :, :, 0]
quarters = "[" + ", ".join("[" + ", ".join(f"{round(4 * v)}/4" for v in r) + "]"
                           for r in averaged) + "]"
print(f"input:\n{example.astype(int)}")
print(f"2×2 max pooling:     {maxed.astype(int).tolist()}")
print(f"2×2 average pooling: {quarters} = {averaged.tolist()}")
np.testing.assert_array_equal(maxed, [[4, 2], [3, 3]])
np.testing.assert_array_equal(averaged, np.array([[9, 4], [7, 7]]) / 4)

# %% [markdown]
# 2×2 max pooling of the three real feature maps: 3×24×24 → 3×12×12 (what the course network's
# `pool1` layer computes).

# %% tags=["pooled"]
pooled = np.asarray(cnn_jax.pool2d(feature_maps[None], "max", (2, 2), (2, 2)))[0]
np.testing.assert_array_equal(pooled, np.asarray(outputs["pool1"][0]))
print("pooled maps:", format_shape(pooled.shape))
_feature_maps_figure({"conv1": feature_maps, "max pool 2×2": pooled}, digit,
                     title="feature maps and their 2×2 max pooling")

# %% [markdown]
# ## 7. The hyper-parameters of a conv layer
#
# Kernel size k, stride s, padding p (zeros around the image) and the number of maps; the
# output size follows the formula of step 3 (the number of maps is the output's depth and
# changes only the parameters: maps·(k·k·channels + 1)). For each setting, the size from the
# formula and the size JAX traces for the real computation (`jax.eval_shape`):

# %% tags=["hyper"]
settings = [dict(kernel=5), dict(kernel=3), dict(kernel=9), dict(kernel=5, stride=2),
            dict(kernel=5, padding=2), dict(kernel=5, stride=2, padding=2),
            dict(kernel=5, features=20)]
rows = []
for setting in settings:
    setting = {"features": 3, **setting}
    net = Network.from_layers([Conv(**setting)])
    (row,) = shape_table(net, SHAPE)
    traced = cnn_jax.traced_shapes(net, SHAPE)["conv1"]
    assert traced == row.output_shape
    rows.append([setting["kernel"], row.stride, row.padding, setting["features"], row.formula,
                 format_shape(row.output_shape), format_shape(traced), f"{row.params:,}"])
display(Markdown(markdown_table(
    ["k", "stride", "pad", "maps", "size formula (28×28 input)", "out (formula)",
     "out (jax.eval_shape)", "params"], rows)))

# %% [markdown]
# ## 8. The whole network
#
# Nielsen's CP(20) → CP(40) → FC100: 20 maps 5×5 → 2×2 max pool → 40 maps 5×5 → 2×2 max pool →
# 100 ReLU neurons → 10 outputs, trained as `make run` trains it (`configs/default.py`: SGD with
# momentum, 4 epochs on all 50,000 training digits, about a minute on 2 CPU cores; quick mode:
# 2 epochs of 2,000 digits). The reported accuracy is the test accuracy at the epoch of best
# validation accuracy (Nielsen's protocol).

# %% tags=["nielsen"]
nielsen = config_file("default")
nielsen.progress = nielsen.plots = False
if QUICK:
    nielsen.num_epochs, nielsen.train_size = 2, 2000
result = train_and_evaluate(nielsen, WORK / "nielsen")
print(f"\ntest accuracy at the best validation epoch ({result['best_epoch']}): "
      f"{100 * result['test_accuracy_at_best_val']:.2f}%; training {result['train_time_s']:.0f} s")
_learning_curves_figure(epoch_records(read_jsonl(WORK / "nielsen" / "metrics.jsonl")),
                        title="CP(20) → CP(40) → FC100 on MNIST")

# %% [markdown]
# A few test digits it gets wrong (the best-validation checkpoint, through
# `cnn_jax.inference.load_run`):

# %%
labels, probabilities = load_run(WORK / "nielsen").predict(data.test_images)
wrong = np.flatnonzero(labels != data.test_labels)
print(f"{len(wrong)} of {len(labels):,} test digits misclassified "
      f"({100 * (1 - len(wrong) / len(labels)):.2f}% right)")
fig = Figure(figsize=(10, 1.9), layout="constrained")
for ax, index in zip(fig.subplots(1, 8), wrong[:8], strict=False):
    ax.imshow(data.test_images[index, :, :, 0], cmap="gray")
    ax.set(xticks=[], yticks=[])
    ax.set_title(f"true {data.test_labels[index]}, said {labels[index]}\n"
                 f"(p = {probabilities[index, labels[index]]:.2f})", fontsize=8)
display(fig)

# %% [markdown]
# ## 9. A small sweep: filter size × pool type
#
# The sweep API trains every point of a grid (`configs/sweeps/*.py` are such grids): here
# CP(20) → CP(20) → softmax with the first kernel 3, 5 or 7 and max or average pooling after
# it, 1 epoch on 1,000 of the embedded digits (300 in quick mode), and builds its report.

# %% tags=["sweep"]
base = small_base()
base.train_size, base.num_epochs, base.progress = (300 if QUICK else 1000), 1, False
axes = [{"product": {"model.layers[0].kernel": [3, 5, 7],
                     "model.layers[1].pool_type": ["max", "avg"]}}]
outcome = run_sweep(sweep_config("course", axes, [0], base), WORK / "sweep", executor="local",
                    echo=False)
print("trials:", outcome.counts())
manifest, trial_rows, summary = write_results(WORK / "sweep")
display(Markdown(configurations_table(manifest, summary)))
display(Image(filename=str(next((WORK / "sweep" / "plots").glob("heatmap_*.png")))))

# %% [markdown]
# ## 10. Where to go next
#
# - [README.md](../README.md): `make run` (the network of step 8, 4 epochs: 99.39%), training
#   and evaluation scripts (`python -m experiments.train`, `experiments.evaluate`,
#   `experiments.shapes` for the shape table of any config), sweeps and their reports.
# - [configs/](../configs/): the course network, Nielsen's rows and the sweep grids
#   (`configs/sweeps/`: filter size, stride, feature maps, pooling, …), each docstring with its
#   command and the result to expect.
# - [docs/results.md](results.md): Nielsen's chapter 6 table reproduced
#   (`python -m experiments.nielsen_ch6`) and the "why CNNs" ablation (fully connected → local
#   → shared → pooling, `python -m experiments.why_cnn`).
# - The explorer, one offline page per sweep where a slider changes a layer's geometry and shows
#   the shapes, the size formula, the receptive field, the kernels and the measured accuracy
#   together: `python -m experiments.sweep --config=configs/sweeps/filter_size.py
#   --workdir=sweeps/filter --config.seeds="(0,1)" --config.base.num_epochs=1`, then
#   `python -m experiments.explore --workdir=sweeps/filter` writes
#   [sweeps/filter/explorer/index.html](../sweeps/filter/explorer/index.html) (that sweep's page
#   is the picture below; `--config=configs/course_3maps.py` gives the geometry of any config
#   without training).
#
#   ![the explorer page of the filter-size sweep on MNIST](explorer.png)
# - [docs/architecture.md](architecture.md): where each concept lives in the code.

# %%
shutil.rmtree(WORK, ignore_errors=True)
load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
print(f"ran in {time.perf_counter() - START:.0f} s (quick mode: {QUICK}); load average: {load}")
