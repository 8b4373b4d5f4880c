"""Figures for the course: kernels as colours, feature maps, learning curves; PNG files only.

Every function takes arrays (NumPy or JAX) and writes one PNG, returning its Path. Figures are
built as `matplotlib.figure.Figure` objects rendered by the Agg canvas, never through pyplot, so
nothing is shown, no global backend is switched and no figure stays open (headless-safe).

Kernels use a diverging colour map centred at 0 with one symmetric scale (vmin = -m, vmax = m)
shared by every panel of a figure: red excites, blue inhibits, white is zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

KERNEL_CMAP = "RdBu_r"
MAP_CMAP = "viridis"
DPI = 120


def _symmetric_limit(kernel: Any) -> float:
    """max |w| over the finite entries: the colour scale is (-m, m); 1.0 if all are zero."""
    values = np.abs(np.asarray(kernel, dtype=np.float64))
    values = values[np.isfinite(values)]
    limit = float(values.max()) if values.size else 0.0
    return limit if limit > 0 else 1.0


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Render `fig` with the Agg canvas to the PNG `path` (folders made) at `DPI`; frees it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    fig.clear()
    return path


def _kernels_figure(
    kernel: Any, *, title: str | None = None, input_channel: int = 0, columns: int | None = None
) -> Figure:
    """The grid of `plot_kernels` as a Figure (tests read its colour limits)."""
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 4:
        raise ValueError(f"conv kernel must be (kh, kw, in_channels, maps), got {kernel.shape}")
    kh, kw, cin, maps = kernel.shape
    if not 0 <= input_channel < cin:
        raise ValueError(f"input_channel {input_channel} is out of range for {cin} channels")
    panels = kernel[:, :, input_channel, :]
    columns = columns or math.ceil(math.sqrt(maps))
    rows = math.ceil(maps / columns)
    limit = _symmetric_limit(panels)
    fig = Figure(figsize=(1.0 * columns + 1.2, 1.0 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    image = None
    for index, ax in enumerate(axes.flat):
        ax.set(xticks=[], yticks=[])
        if index >= maps:
            ax.set_visible(False)
            continue
        image = ax.imshow(panels[:, :, index], cmap=KERNEL_CMAP, vmin=-limit, vmax=limit,
                          interpolation="nearest")
        ax.set_title(str(index), fontsize=7, pad=2)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    channel = f", input channel {input_channel} of {cin}" if cin > 1 else ""
    default = f"{maps} kernels {kh}×{kw}{channel}"
    fig.suptitle(f"{title}: {default}" if title else default, fontsize=10)
    return fig


def plot_kernels(
    kernel: Any, path: str | Path, *, title: str | None = None, input_channel: int = 0,
    columns: int | None = None,
) -> Path:
    """One panel per map of a conv kernel (kh, kw, in_channels, maps) at `input_channel`.

    Nielsen's first layer (5, 5, 1, 20) gives a 4×5 grid; columns default to ceil(sqrt(maps)).
    `title` prefixes the automatic description (e.g. the layer name).
    """
    figure = _kernels_figure(kernel, title=title, input_channel=input_channel, columns=columns)
    return save_figure(figure, path)


def _even_indices(size: int, count: int) -> np.ndarray:
    """At most `count` evenly spaced indices in range(size), first and last included."""
    return np.unique(np.linspace(0, size - 1, min(size, count)).round().astype(int))


def _local_figure(
    kernel: Any, *, map_index: int = 0, input_channel: int = 0, max_grid: int = 12,
    title: str | None = None,
) -> Figure:
    """The mosaic of `plot_local_kernels` as a Figure (one image, NaN gutters between kernels)."""
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 6:
        raise ValueError(
            f"local kernel must be (out_h, out_w, kh, kw, in_channels, maps), got {kernel.shape}"
        )
    out_h, out_w, kh, kw, cin, maps = kernel.shape
    if not 0 <= map_index < maps or not 0 <= input_channel < cin:
        raise ValueError(f"map {map_index} / channel {input_channel} out of range for "
                         f"{maps} maps and {cin} channels")
    rows, cols = _even_indices(out_h, max_grid), _even_indices(out_w, max_grid)
    chosen = kernel[np.ix_(rows, cols)][:, :, :, :, input_channel, map_index]  # (r, c, kh, kw)
    gutters = np.pad(chosen, ((0, 0), (0, 0), (0, 1), (0, 1)), constant_values=np.nan)
    mosaic = gutters.transpose(0, 2, 1, 3).reshape(len(rows) * (kh + 1), -1)[:-1, :-1]
    limit = _symmetric_limit(chosen)
    size = min(10.0, 2.0 + 0.45 * max(len(rows), len(cols)) * max(kh, kw) / 5)
    fig = Figure(figsize=(size + 1.3, size + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.set_facecolor("0.85")
    image = ax.imshow(mosaic, cmap=KERNEL_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks(np.arange(len(cols)) * (kw + 1) + (kw - 1) / 2, [str(c) for c in cols])
    ax.set_yticks(np.arange(len(rows)) * (kh + 1) + (kh - 1) / 2, [str(r) for r in rows])
    ax.tick_params(length=0, labelsize=7)
    ax.set(xlabel="output column", ylabel="output row")
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    shown = f"{len(rows)}×{len(cols)} of {out_h}×{out_w} positions"
    default = f"unshared {kh}×{kw} kernels of map {map_index} (channel {input_channel}), {shown}"
    fig.suptitle(f"{title}: {default}" if title else default, fontsize=10)
    return fig


def plot_local_kernels(
    kernel: Any, path: str | Path, *, map_index: int = 0, input_channel: int = 0,
    max_grid: int = 12, title: str | None = None,
) -> Path:
    """Kernels of one map of a locally connected layer (out_h, out_w, kh, kw, in_channels, maps),
    laid out at their output positions; at most `max_grid` evenly spaced rows and columns."""
    figure = _local_figure(kernel, map_index=map_index, input_channel=input_channel,
                           max_grid=max_grid, title=title)
    return save_figure(figure, path)


def _image_panel(image: Any) -> tuple[np.ndarray, str | None]:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 3:
        low, high = float(image.min()), float(image.max())
        return (image - low) / (high - low or 1.0), None
    if image.ndim == 3:
        image = image[:, :, 0]
    return image, "gray"


def _image_layers(activations: Mapping[str, Any]) -> list[tuple[str, np.ndarray]]:
    """The (H, W, maps) entries of `activations` (a leading batch axis of 1 dropped)."""
    layers = []
    for name, value in activations.items():
        value = np.asarray(value, dtype=np.float32)
        if value.ndim == 4 and value.shape[0] == 1:
            value = value[0]
        if value.ndim == 3:
            layers.append((name, value))
    return layers


def _row_colorbar(fig: Figure, mappable: Any, row: Any, label: str) -> None:
    """One colour scale for a row of panels, at the right end of the row."""
    bar = fig.colorbar(mappable, ax=list(row), shrink=0.9, aspect=10, pad=0.01)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=6)


def _prediction_text(label: int | None, prediction: tuple[int, float] | None
                     ) -> tuple[str, str]:
    """The lines beside the input image and their colour (green right, red wrong)."""
    lines, colour = [], "black"
    if label is not None:
        lines.append(f"true label: {label}")
    if prediction is not None:
        predicted, probability = prediction
        lines += [f"predicted: {predicted}", f"(p = {100 * probability:.1f}%)"]
        if label is not None:
            right = predicted == label
            lines.append("correct" if right else "wrong")
            colour = "tab:green" if right else "tab:red"
    return "\n".join(lines), colour


def _feature_maps_figure(
    activations: Mapping[str, Any], image: Any, *, max_maps: int = 16, title: str | None = None,
    label: int | None = None, prediction: tuple[int, float] | None = None,
) -> Figure:
    """The grid of `plot_feature_maps` as a Figure (tests read its colour scales and texts)."""
    layers = _image_layers(activations)
    columns = max([2] + [min(max_maps, value.shape[-1]) for _, value in layers])
    fig = Figure(figsize=(0.95 * columns + 2.0, 1.05 * (len(layers) + 1) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(layers) + 1, columns, squeeze=False)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
        ax.set_visible(False)
    pixels, cmap = _image_panel(image)
    axes[0, 0].set_visible(True)
    shown = axes[0, 0].imshow(pixels, cmap=cmap, interpolation="nearest")
    axes[0, 0].set_ylabel(f"input\n{'×'.join(map(str, np.shape(image)))}", fontsize=8)
    if cmap is not None:  # an RGB image is its own colour scale
        _row_colorbar(fig, shown, axes[0], "pixel value")
    text, colour = _prediction_text(label, prediction)
    if text:
        info = axes[0, 1]
        info.set_visible(True)
        info.axis("off")
        info.text(0.0, 0.5, text, transform=info.transAxes, ha="left", va="center", fontsize=8,
                  color=colour)
    for row, (name, value) in enumerate(layers, start=1):
        height, width, maps = value.shape
        count = min(max_maps, maps)
        low, high = float(value[..., :count].min()), float(value[..., :count].max())
        high = high if high > low else low + 1.0  # a constant row still gets a readable scale
        for index in range(count):
            ax = axes[row, index]
            ax.set_visible(True)
            shown = ax.imshow(value[:, :, index], cmap=MAP_CMAP, vmin=low, vmax=high,
                              interpolation="nearest")
        _row_colorbar(fig, shown, axes[row], "activation")
        note = f"\n(first {count})" if count < maps else ""
        axes[row, 0].set_ylabel(f"{name}\n{height}×{width}×{maps}{note}", fontsize=8)
    fig.suptitle(title or "feature maps (one colour scale per layer)", fontsize=10)
    return fig


def plot_feature_maps(
    activations: Mapping[str, Any], image: Any, path: str | Path, *, max_maps: int = 16,
    title: str | None = None, label: int | None = None,
    prediction: tuple[int, float] | None = None,
) -> Path:
    """The input image (H, W) or (H, W, C) with its true `label` and the network's
    `prediction` (class, probability) beside it, then one row per layer output (H, W, maps) in
    `activations` order, first `max_maps` maps each, one colour scale (colorbar) per row.
    Entries of other ranks (e.g. dense outputs (units,)) are skipped; a leading batch axis of 1
    is dropped."""
    return save_figure(_feature_maps_figure(activations, image, max_maps=max_maps, title=title,
                                            label=label, prediction=prediction), path)


def _epoch(index: int, entry: Mapping[str, Any]) -> float:
    epoch = entry.get("epoch")
    return float(index + 1 if epoch is None else epoch)


def _finite(value: Any) -> bool:
    return value is not None and bool(np.isfinite(float(value)))


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for index, entry in enumerate(history):
        value = entry.get(key)
        if _finite(value):
            xs.append(_epoch(index, entry))
            ys.append(float(value))
    return xs, ys


def _reported_epoch(history: Sequence[Mapping[str, Any]]
                    ) -> tuple[float, float | None, bool] | None:
    """(epoch, its test accuracy, chosen on validation) as Nielsen's protocol reports it
    (`cnn_jax.train.results.summarize`): the highest val_accuracy, the earliest on ties; the
    final epoch where no epoch has a validation accuracy. None for an empty history."""
    numbered = [(_epoch(index, entry), entry) for index, entry in enumerate(history)]
    if not numbered:
        return None
    validated = [(epoch, e) for epoch, e in numbered if _finite(e.get("val_accuracy"))]
    if validated:
        epoch, entry = max(validated, key=lambda pair: (float(pair[1]["val_accuracy"]),
                                                         -pair[0]))
    else:
        epoch, entry = numbered[-1]
    test = entry.get("test_accuracy")
    return epoch, (float(test) if _finite(test) else None), bool(validated)


_SPLITS = {"train": ("train", "tab:blue"), "val": ("validation", "tab:orange"),
           "test": ("test", "tab:green")}


def _curve_style(key: str, word: str) -> tuple[str, str | None]:
    """The legend name and colour of a history key: 'val_loss' → ('validation', orange)."""
    prefix = key[: -len(word)].rstrip("_") if key.endswith(word) else key
    return _SPLITS.get(prefix, (key.replace("_", " "), None))


def _learning_curves_figure(
    history: Sequence[Mapping[str, Any]], *, title: str | None = None
) -> Figure:
    """The two panels of `plot_learning_curves` as a Figure (tests read its lines and legend)."""
    keys = list(dict.fromkeys(key for entry in history for key in entry))
    reported = _reported_epoch(history)
    marker = None
    if reported is not None:
        epoch, test, by_validation = reported
        test_text = "n/a" if test is None else f"{100 * test:.2f}%"
        marker = (f"best validation: epoch {epoch:g}, test {test_text}" if by_validation
                  else f"final epoch {epoch:g} (no validation): test {test_text}")
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    handles: dict[str, Any] = {}
    panels = (("loss", "loss (mean per image)", 1.0), ("accuracy", "accuracy (%)", 100.0))
    for ax, (word, ylabel, scale) in zip(axes, panels, strict=True):
        drawn = 0
        for key in keys:
            if word not in key:
                continue
            xs, ys = _series(history, key)
            if not xs:
                continue
            name, colour = _curve_style(key, word)
            (line,) = ax.plot(xs, [scale * y for y in ys], "o-", markersize=3, color=colour,
                              label=name)
            handles.setdefault(name, line)
            drawn += 1
        if marker is not None:
            marker_line = ax.axvline(reported[0], color="0.3", linestyle="--", linewidth=1,
                                     label=marker)
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, f"no {word} recorded", ha="center", va="center",
                    transform=ax.transAxes)
    if marker is not None:
        handles[marker] = marker_line  # last in the legend
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or "learning curves", fontsize=10)
    return fig


def plot_learning_curves(
    history: Sequence[Mapping[str, Any]], path: str | Path, *, title: str | None = None
) -> Path:
    """Loss and accuracy (%) against epoch from per-epoch dicts, e.g. {'epoch': 1,
    'train_loss': …, 'train_accuracy': …, 'val_accuracy': …, 'test_accuracy': …}, as train /
    validation / test curves; missing or None values are left out, every key containing
    'loss' / 'accuracy' is drawn. A dashed line marks the epoch the run reports (best
    validation accuracy, the earliest on ties; the final epoch without validation) with its
    test accuracy in the legend."""
    return save_figure(_learning_curves_figure(history, title=title), path)


def plot_network_kernels(
    network: Any, params: Mapping[str, Any], workdir: str | Path
) -> list[Path]:
    """`kernels_<name>.png` for every conv layer (input channel 0 where there are several) and
    `local_kernels_<name>.png` (map 0) for every locally connected layer, under `workdir`."""
    workdir = Path(workdir)
    written = []
    for name, layer in zip(network.names, network.layers, strict=True):
        if name not in params:
            continue
        kernel = np.asarray(params[name]["kernel"])
        if layer.kind == "conv":
            written.append(plot_kernels(kernel, workdir / f"kernels_{name}.png", title=name))
        elif layer.kind == "local":
            written.append(plot_local_kernels(kernel, workdir / f"local_kernels_{name}.png",
                                              title=name))
    return written


def _predict(network: Any, params: Mapping[str, Any], image: np.ndarray) -> tuple[int, float]:
    """(class, probability) of softmax(network.apply(params, image[None])) for one image."""
    logits = np.asarray(network.apply(params, image[None]), dtype=np.float64)[0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    predicted = int(np.argmax(probabilities))
    return predicted, float(probabilities[predicted])


def _feature_maps_for_figure(
    network: Any, params: Mapping[str, Any], image: Any, *, max_maps: int = 16,
    label: int | None = None,
) -> Figure:
    """The figure of `plot_feature_maps_for` (tests read its texts)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    outputs = network.activations(params, image[None])
    maps = {name: np.asarray(value)[0] for name, value in outputs.items() if value.ndim == 4}
    return _feature_maps_figure(maps, image, max_maps=max_maps, label=label,
                                prediction=_predict(network, params, image))


def plot_feature_maps_for(
    network: Any, params: Mapping[str, Any], image: Any, path: str | Path, *, max_maps: int = 16,
    label: int | None = None,
) -> Path:
    """Run `network.activations` on one image (H, W) or (H, W, C) and plot its image-shaped
    layer outputs with `plot_feature_maps`, beside the image its true `label` (if given) and
    the network's prediction (argmax of the softmax of its logits, with its probability)."""
    figure = _feature_maps_for_figure(network, params, image, max_maps=max_maps, label=label)
    return save_figure(figure, path)
