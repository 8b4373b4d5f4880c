"""The shape table: for every layer, input → output size by the formula, costs, receptive field.

    for row in shape_table(network, (28, 28, 1)): ...
    print(format_table(shape_table(network, (28, 28, 1))))

Receptive field r and jump j (distance on the input image between neighbouring outputs) grow as
r ← r + (dilation·(k − 1))·j and j ← j·stride through every sliding-window layer.
"""

from __future__ import annotations

import dataclasses

import jax

from cnn_jax.layers.base import Shape
from cnn_jax.markdown import markdown_table
from cnn_jax.network import Network


def format_shape(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


@dataclasses.dataclass(frozen=True)
class ShapeRow:
    """One line of the shape table (sizes exclude the batch axis; images are H×W×C)."""

    name: str
    kind: str
    detail: str
    activation: str
    input_shape: Shape
    output_shape: Shape
    kernel: str
    stride: str
    padding: str
    dilation: str
    formula: str
    params: int
    macs: int
    receptive_field: str
    jump: str

    def as_dict(self) -> dict:
        row = dataclasses.asdict(self)
        row["input_shape"] = list(self.input_shape)
        row["output_shape"] = list(self.output_shape)
        return row


def _axis_pair(values: tuple[int, int]) -> str:
    return str(values[0]) if values[0] == values[1] else f"{values[0]}×{values[1]}"


def shape_table(network: Network, input_shape: Shape) -> list[ShapeRow]:
    """Rows of the shape table of `network` on inputs (height, width, channels)."""
    field, jump = [1, 1], [1, 1]
    image = tuple(input_shape[:2])
    rows = []
    for plan in network.plan(input_shape):
        if plan.geometry is not None:
            geo = plan.geometry
            for i, axis in enumerate(geo):
                field[i] += (axis.effective_kernel - 1) * jump[i]
                jump[i] *= axis.stride
            formulas = [axis.formula() for axis in geo]
            formula = formulas[0] if formulas[0] == formulas[1] else " | ".join(
                f"{axis.axis[0]}: {text}" for axis, text in zip(geo, formulas, strict=True)
            )
            pads = [(a.pad_lo, a.pad_hi) for a in geo]
            padding = (
                _axis_pair((pads[0][0], pads[1][0]))
                if all(lo == hi for lo, hi in pads)
                else f"{pads[0]}×{pads[1]}"
            )
            kernel = _axis_pair((geo[0].kernel, geo[1].kernel))
            stride = _axis_pair((geo[0].stride, geo[1].stride))
            dilation = _axis_pair((geo[0].dilation, geo[1].dilation))
            receptive, step = _axis_pair(tuple(field)), _axis_pair(tuple(jump))
        else:
            formula = kernel = stride = padding = dilation = ""
            if plan.kind == "dense":
                field = list(image)
            receptive = _axis_pair(tuple(field))
            step = "—" if plan.kind == "dense" else _axis_pair(tuple(jump))
        rows.append(ShapeRow(
            name=plan.name, kind=plan.kind, detail=plan.detail, activation=plan.activation,
            input_shape=plan.input_shape, output_shape=plan.output_shape, kernel=kernel,
            stride=stride, padding=padding, dilation=dilation, formula=formula,
            params=plan.params, macs=plan.macs, receptive_field=receptive, jump=step,
        ))
    return rows


def traced_shapes(network: Network, input_shape: Shape) -> dict[str, Shape]:
    """Each layer's output shape as traced by `jax.eval_shape` of the real forward pass."""
    params = jax.eval_shape(lambda: network.init(jax.random.key(0), input_shape))
    images = jax.ShapeDtypeStruct((1, *input_shape), "float32")
    traced = jax.eval_shape(network.activations, params, images)
    return {name: tuple(value.shape[1:]) for name, value in traced.items()}


COLUMNS = (
    ("layer", "name"), ("type", "detail"), ("act", "activation"), ("in (H×W×C)", "input_shape"),
    ("out", "output_shape"), ("k", "kernel"), ("s", "stride"), ("pad", "padding"),
    ("dil", "dilation"), ("size formula", "formula"), ("params", "params"), ("MACs", "macs"),
    ("RF", "receptive_field"), ("jump", "jump"),
)


def _cell(row: ShapeRow, attribute: str) -> str:
    value = getattr(row, attribute)
    if attribute.endswith("shape"):
        return format_shape(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(rows: list[ShapeRow], *, markdown: bool = False) -> str:
    """A plain-text (or Markdown) table of `rows`, with a totals line."""
    header = [title for title, _ in COLUMNS]
    body = [[_cell(row, attribute) for _, attribute in COLUMNS] for row in rows]
    total = ["total", "", "", "", "", "", "", "", "", "",
             f"{sum(r.params for r in rows):,}", f"{sum(r.macs for r in rows):,}", "", ""]
    if markdown:  # the per-axis formula's '|' is escaped by markdown_table
        return markdown_table(header, [*body, total])
    widths = [max(len(cells[i]) for cells in [header, *body, total]) for i in range(len(header))]
    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *map(line, body), rule, line(total)]).rstrip()
