"""The explorer page in a real browser: Debian's Chromium driven by Playwright for Python.

A tiny sweep is trained here (3 trials of 1 epoch; one configuration is impossible), its page
built by the shipped command, and the controls moved: the shape table, the numbers and the
images must change as they should, the page's size formula (static/shapes.js) must agree with
cnn_jax.shapes on random geometries and networks, with no console error and no request other
than the page's own file. Without a browser these tests skip with the reason.
CNN_JAX_EXPLORER_SCREENSHOT=docs/explorer.png (and CNN_JAX_EXPLORER_PAGE=…/index.html) make
test_screenshot write the README's picture.
"""

import os
import random
from pathlib import Path

import pytest

from cnn_jax import Conv, Dense, Dropout, Network, Pool
from cnn_jax.errors import CnnJaxError, LayerError, ShapeError
from cnn_jax.explorer import config_data, sweep_data, write_page
from cnn_jax.shapes import pool_geometry, window_geometry
from cnn_jax.summary import shape_table
from tests.conftest import run_script, tiny_config
from tests.test_explorer import KS_AXES, tiny_sweep_config, write_sweep_folder

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser: {CHROMIUM} missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as error:  # noqa: BLE001 - any launch failure means: no browser here
            pytest.skip(f"Chromium does not start: {str(error).splitlines()[0]}")
        yield chromium
        chromium.close()


class Watched:
    """A page with its console errors, uncaught exceptions and requests recorded."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1300, "height": 1000})
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_function("window.explorerReadyMs !== undefined")

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def row(self, layer: str) -> list[str]:
        cells = self.page.locator(f"#shape-table tbody tr[data-layer='{layer}'] td")
        return cells.all_inner_texts()

    def canvases(self) -> list[str]:
        return self.page.evaluate(
            "[...document.querySelectorAll('canvas')].map((c) => c.toDataURL())")

    def move(self, selector: str, value) -> None:
        rendered = self.page.evaluate("Number(document.body.dataset.rendered)")
        self.page.fill(selector, str(value))
        self.page.wait_for_function(f"Number(document.body.dataset.rendered) > {rendered}")

    def close(self) -> None:
        assert self.errors == []
        assert all(url == self.url for url in self.requests), self.requests
        self.page.close()


@pytest.fixture(scope="module")
def trained_sweep(tmp_path_factory, train_env):
    """k ∈ {5, 9} × stride ∈ {1, 3} of configs/sweeps/tiny.py, 1 epoch on 100 images; k9-s3 is
    impossible (conv2's 4×4 kernel on a 3×3 map). Its page by the shipped command."""
    from cnn_jax.sweep import run_sweep

    config = tiny_sweep_config(KS_AXES, seeds=(0,))
    config.base.dataset = "mnist_5k"  # real digits on the page
    config.base.train_size, config.base.validation_size, config.base.test_size = 100, 50, 50
    workdir = tmp_path_factory.mktemp("browser") / "sweep"
    run_sweep(config, workdir, executor="local", report=False, echo=False,
              compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    result = run_script(f"--workdir={workdir}", module="experiments.explore", timeout=300)
    assert result.returncode == 0, result.stderr
    return workdir


def test_moving_the_sweep_controls_changes_shapes_numbers_and_images(browser, trained_sweep):
    data = sweep_data(trained_sweep, views=False)
    accuracy = {c["id"]: c["accuracy"]["mean"] for c in data["configs"]}
    page = Watched(browser, trained_sweep / "explorer" / "index.html")
    assert page.text("#config-id") == "configuration: k5-s1"
    assert page.row("conv1")[3] == "24×24×4"
    assert page.text("#acc-mean") == f"{100 * accuracy['k5-s1']:.2f}%"
    assert page.text("#total-params") == f"{data['configs'][0]['trials'][0]['params']:,}"
    before = page.canvases()

    page.move("#axis-0", 1)  # kernel 5 → 9
    assert page.text("#config-id") == "configuration: k9-s1"
    assert page.row("conv1")[3] == "20×20×4"
    assert page.row("conv1")[8] == "floor((28 + 2·0 − 1·(9−1) − 1)/1) + 1 = 20"
    assert page.text("#acc-mean") == f"{100 * accuracy['k9-s1']:.2f}%"
    after = page.canvases()
    assert len(after) == len(before) and all(a != b for a, b in zip(after, before, strict=True))
    assert page.page.locator("#kernels canvas[data-layer='conv1']").count() == 1
    assert page.page.locator("#scatter circle.selected").count() == 1

    page.move("#axis-1", 1)  # stride 1 → 3: impossible
    error = page.text("#error")
    reason = next(c["reason"] for c in data["configs"] if c["id"] == "k9-s3")
    formula = "out = floor((3 + 2·0 − 1·(4−1) − 1)/1) + 1 = 0"
    assert "layer conv2" in error and formula in error and formula in reason
    assert page.row("conv1")[3] == "7×7×4" and page.row("pool1")[3] == "3×3×4"
    assert page.text("#acc-mean") == "—"

    page.move("#axis-0", 0)  # k5-s3: conv1 8×8, pool1 4×4, conv2 1×1
    assert page.page.locator("#error").is_hidden()
    assert page.row("conv2")[3] == "1×1×4"
    page.page.select_option("#layer-select", "pool1")
    page.page.wait_for_function("document.querySelector('#rf-text').textContent.includes('pool1')")
    assert "field 8×8 px" in page.text("#rf-text") and "6 px apart" in page.text("#rf-text")
    page.close()


def random_case(rng: random.Random) -> dict:
    kind = rng.choice(["conv", "conv", "pool"])
    padding = rng.choice(["VALID", "SAME", rng.randint(0, 5), [rng.randint(0, 4), rng.randint(
        0, 4)], [[rng.randint(0, 3), rng.randint(0, 3)], [rng.randint(0, 3), rng.randint(0, 3)]]])
    return {"kind": kind, "size": [rng.randint(1, 40), rng.randint(1, 40)],
            "kernel": rng.choice([rng.randint(1, 12), [rng.randint(1, 9), rng.randint(1, 9)]]),
            "stride": rng.choice([rng.randint(1, 4), [rng.randint(1, 4), rng.randint(1, 4)]]),
            "dilation": 1 if kind == "pool" else rng.randint(1, 3), "padding": padding}


def python_geometry(case: dict) -> dict:
    tuples = {k: tuple(tuple(v) if isinstance(v, list) else v for v in case[k])
              if isinstance(case[k], list) else case[k] for k in ("kernel", "stride", "padding")}
    try:
        if case["kind"] == "pool":
            axes = pool_geometry("L", tuple(case["size"]), tuples["kernel"], tuples["stride"],
                                 tuples["padding"])
        else:
            axes = window_geometry("L", "conv", tuple(case["size"]), tuples["kernel"],
                                   tuples["stride"], tuples["padding"], case["dilation"])
    except ShapeError:
        return {"error": "shape"}
    except LayerError:
        return {"error": "layer"}
    return {"out": [a.size_out for a in axes], "formula": [a.formula() for a in axes]}


JS_GEOMETRY = """(cases) => cases.map((c) => {
  try {
    const axes = c.kind === "pool"
      ? Shapes.poolGeometry("L", c.size, c.kernel, c.stride, c.padding)
      : Shapes.windowGeometry("L", "conv", c.size, c.kernel, c.stride, c.padding, c.dilation);
    return { out: axes.map((a) => a.out), formula: axes.map((a) => a.formula) };
  } catch (e) { return { error: e.kind }; }
})"""


def test_page_formula_agrees_with_cnn_jax_shapes_on_random_geometries(browser, tmp_path):
    rng = random.Random(0)
    cases = [random_case(rng) for _ in range(1500)]
    expected = [python_geometry(case) for case in cases]
    page = Watched(browser, write_page(config_data(tiny_config()), tmp_path))
    got = page.page.evaluate(JS_GEOMETRY, cases)
    mismatches = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert mismatches == []
    kinds = [e.get("error", "ok") for e in expected]
    assert min(kinds.count("ok"), kinds.count("shape")) > 100  # both outcomes well covered
    page.close()


def random_layers(rng: random.Random) -> list[dict]:
    layers = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.6:
            layers.append({"type": rng.choice(["conv", "local"]), "features": rng.randint(1, 8),
                           "kernel": rng.randint(1, 7), "stride": rng.randint(1, 3),
                           "padding": rng.choice(["VALID", "SAME", rng.randint(0, 3)]),
                           "dilation": rng.randint(1, 2), "activation": "relu"})
        elif rng.random() < 0.8:
            layers.append({"type": "pool", "pool_type": rng.choice(["max", "avg", "none"]),
                           "window": rng.randint(1, 4), "stride": rng.choice(["window", 1, 2]),
                           "padding": rng.choice(["VALID", "SAME", rng.randint(0, 1)])})
        else:
            layers.append({"type": "dropout", "rate": 0.25})
    return [*layers, {"type": "dense", "features": rng.randint(2, 10), "activation": "identity"}]


def python_table(layers: list[dict], shape) -> list[dict] | str:
    specs = []
    for layer in layers:
        spec = {k: v for k, v in layer.items() if k != "type"}
        if layer["type"] == "pool" and spec["stride"] == "window":
            spec["stride"] = None
        cls = {"conv": Conv, "pool": Pool, "dense": Dense, "dropout": Dropout}.get(layer["type"])
        specs.append(cls(**spec) if cls else {"type": "local", **spec})
    try:
        rows = shape_table(Network.from_layers(specs), shape)
    except CnnJaxError:
        return "error"
    return [{"out": list(r.output_shape), "params": r.params, "macs": r.macs,
             "formula": r.formula, "rf": r.receptive_field, "jump": r.jump} for r in rows]


JS_TABLE = """([layers, shape]) => {
  const plan = Shapes.planNetwork(layers, shape);
  return plan.error ? "error" : plan.rows.map((r) => ({ out: r.output, params: r.params,
    macs: r.macs, formula: r.formula, rf: r.receptiveField, jump: r.jumpText }));
}"""


def test_page_shape_table_agrees_with_the_summary_on_random_networks(browser, tmp_path):
    rng = random.Random(1)
    page = Watched(browser, write_page(config_data(tiny_config()), tmp_path))
    outcomes = []
    for _ in range(300):
        layers, shape = random_layers(rng), [rng.randint(8, 32), rng.randint(8, 32), 2]
        expected = python_table(layers, tuple(shape))
        assert page.page.evaluate(JS_TABLE, [layers, shape]) == expected, layers
        outcomes.append(expected == "error")
    assert 30 < sum(outcomes) < 270
    page.close()


def test_config_page_has_per_layer_geometry_controls(browser, tmp_path):
    page = Watched(browser, write_page(config_data(tiny_config()), tmp_path))
    assert page.row("conv1")[3] == "24×24×4"
    assert page.text("#total-params") == f"{5 * 5 * 4 + 4 + 12 * 12 * 4 * 10 + 10:,}"
    page.move("#layer-0-kernel", 3)
    assert page.row("conv1")[3] == "26×26×4" and page.row("pool1")[3] == "13×13×4"
    assert page.text("#total-params") == f"{3 * 3 * 4 + 4 + 13 * 13 * 4 * 10 + 10:,}"
    page.move("#layer-0-stride", 2)
    assert page.row("conv1")[8] == "floor((28 + 2·0 − 1·(3−1) − 1)/2) + 1 = 13"
    page.move("#layer-0-padding", "SAME")
    assert page.row("conv1")[3] == "14×14×4" and page.row("conv1")[6] == "(0, 1)×(0, 1)"
    page.move("#layer-1-window", 20)
    assert "layer pool1" in page.text("#error") and "= 0" in page.text("#error")
    page.close()


def pareto_front(data: dict) -> list[str]:
    """The configurations no other beats in both cost (parameters) and mean accuracy, cheapest
    first (by pairwise comparison)."""
    points = [(c["trials"][0]["params"], c["accuracy"]["mean"], c["id"]) for c in data["configs"]
              if c["accuracy"]["mean"] is not None]
    front = [p for p in points if not any(
        q[0] <= p[0] and q[1] >= p[1] and (q[0], q[1]) != (p[0], p[1]) for q in points)]
    return [p[2] for p in sorted(front)]


@pytest.fixture(scope="module")
def sweep_200(tmp_path_factory):
    axes = [{"product": {"model.layers[0].kernel": list(range(1, 11)),
                         "model.layers[0].features": list(range(1, 11))}}]
    workdir = tmp_path_factory.mktemp("sweep200")
    write_sweep_folder(workdir, axes, seeds=(0, 1))
    return write_page(sweep_data(workdir), workdir / "explorer")


def test_200_trial_page_opens_within_a_second(browser, sweep_200):
    page = Watched(browser, sweep_200)
    ready = page.page.evaluate("window.explorerReadyMs")
    assert ready < 1000, f"first render after {ready:.0f} ms"
    assert page.page.locator("#scatter circle.trial").count() == 200
    assert page.page.locator("#scatter circle.selected").count() == 2
    front = page.page.get_attribute("#scatter path.front", "data-configs").split(",")
    assert front == pareto_front(sweep_data(sweep_200.parent.parent, views=False))
    page.move("#axis-1", 9)
    assert page.text("#config-id") == "configuration: k1-f10"
    assert page.page.locator("#scatter circle.selected").count() == 2
    page.close()


def test_screenshot(browser, request, tmp_path):
    source = os.environ.get("CNN_JAX_EXPLORER_PAGE")
    source = Path(source) if source else (
        request.getfixturevalue("trained_sweep") / "explorer" / "index.html")
    target = Path(os.environ.get("CNN_JAX_EXPLORER_SCREENSHOT") or tmp_path / "explorer.png")
    page = Watched(browser, source)
    shot = tmp_path / "raw.png"
    page.page.screenshot(path=str(shot), full_page=True)
    page.close()
    from PIL import Image

    image = Image.open(shot).convert("RGB").quantize(colors=128)
    image.save(target, optimize=True)
    assert target.stat().st_size < 300_000
