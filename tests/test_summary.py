"""The shape table: the course's rows, receptive fields, totals, Markdown, and the traced shapes."""

from __future__ import annotations

import re

import pytest

from cnn_jax import (
    PRESETS,
    Conv,
    Dense,
    Dropout,
    LocallyConnected,
    Network,
    Pool,
    format_table,
    preset,
    shape_table,
    traced_shapes,
)

CP2_MACS = 24 * 24 * 20 * 25 + 8 * 8 * 40 * (25 * 20) + 640 * 100 + 100 * 10  # 1,633,000


def table(layers, input_shape=(28, 28, 1)):
    return shape_table(Network.from_layers(layers), input_shape)


def markdown_cells(line: str) -> list[str]:
    """The cells of a Markdown table row: split on pipes that are not escaped."""
    assert line.startswith("|") and line.endswith("|"), line
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def test_course_3maps_rows():
    rows = table(preset("course_3maps"))
    assert [(r.name, r.input_shape, r.output_shape) for r in rows] == [
        ("conv1", (28, 28, 1), (24, 24, 3)),
        ("pool1", (24, 24, 3), (12, 12, 3)),
        ("dense1", (12, 12, 3), (10,)),
    ]
    conv, pool, dense = rows
    assert (conv.kernel, conv.stride, conv.padding, conv.dilation) == ("5", "1", "0", "1")
    assert conv.formula == "floor((28 + 2·0 − 1·(5−1) − 1)/1) + 1 = 24"
    assert pool.formula == "floor((24 + 2·0 − 1·(2−1) − 1)/2) + 1 = 12"
    assert dense.formula == ""
    assert [r.params for r in rows] == [3 * (5 * 5 + 1), 0, 12 * 12 * 3 * 10 + 10]
    assert [r.macs for r in rows] == [24 * 24 * 3 * 25, 0, 432 * 10]
    assert conv.activation == "sigmoid"


def test_receptive_field_and_jump_of_cp20_cp40():
    # r ← r + (k − 1)·j, j ← j·s: conv5 → 5/1, pool2 → 6/2, conv5 → 14/2, pool2 → 16/4
    rows = table(preset("nielsen_cp2_fc100"))
    assert [(r.receptive_field, r.jump) for r in rows] == [
        ("5", "1"), ("6", "2"), ("14", "2"), ("16", "4"), ("28", "—"), ("28", "—"),
    ]


def test_receptive_field_with_dilation_stride_and_rectangles():
    rows = table(
        [Conv(2, 3, dilation=2), Conv(2, (3, 5), stride=2), Dropout(0.5), Pool("none"),
         LocallyConnected(2, 3)],
        (40, 30, 1),
    )
    # conv k3 d2: span 5 → 5/1 ; conv 3×5 s2 → 7×9 / 2 ; dropout, no pooling: unchanged ;
    # local k3 → 7+2·2 = 11, 9+2·2 = 13, jump 2
    assert [(r.receptive_field, r.jump) for r in rows] == [
        ("5", "1"), ("7×9", "2"), ("7×9", "2"), ("7×9", "2"), ("11×13", "2"),
    ]
    assert rows[1].kernel == "3×5"
    assert rows[1].formula == (
        "h: floor((36 + 2·0 − 1·(3−1) − 1)/2) + 1 = 17 | "
        "w: floor((26 + 2·0 − 1·(5−1) − 1)/2) + 1 = 11"
    )


def test_asymmetric_padding_is_shown_per_axis():
    (row,) = table([Conv(2, 3, padding=((1, 2), (0, 0)))], (10, 10, 1))
    assert row.padding == "(1, 2)×(0, 0)"
    assert row.output_shape == (11, 8, 2)  # (10 + 3 − 3)/1 + 1 = 11 ; 10 − 3 + 1 = 8


def test_format_table_shows_formulas_and_totals():
    text = format_table(table(preset("nielsen_cp2_fc100")))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "type", "act"]
    assert len(lines) == 1 + 1 + 6 + 1 + 1  # header, rule, rows, rule, total
    assert set(lines[1]) == set(lines[-2]) == {"-"}
    assert "floor((28 + 2·0 − 1·(5−1) − 1)/1) + 1 = 24" in text
    assert "floor((12 + 2·0 − 1·(5−1) − 1)/1) + 1 = 8" in text
    assert "24×24×20" in text and "4×4×40" in text
    total = lines[-1].split()
    assert total[0] == "total"
    assert "85,670" in total and f"{CP2_MACS:,}" in total
    assert CP2_MACS == 1_633_000


@pytest.mark.parametrize(
    "layers",
    [preset("lenet5"), [Conv(2, (3, 5), stride=(1, 2)), Pool("avg", (2, 3)), Dense(10)]],
    ids=["lenet5", "rectangular"],
)
def test_markdown_table_is_well_formed(layers):
    rows = table(layers, (28, 20, 1))
    text = format_table(rows, markdown=True)
    lines = text.splitlines()
    header = markdown_cells(lines[0])
    assert header[:2] == ["layer", "type"]
    assert re.fullmatch(r"\|(---\|)+", lines[1]) and lines[1].count("---") == len(header)
    assert len(lines) == 2 + len(rows) + 1
    for line, row in zip(lines[2:], rows, strict=False):
        cells = markdown_cells(line)
        assert len(cells) == len(header), line
        assert cells[0] == row.name
        assert cells[9].replace("\\|", "|") == row.formula  # a per-axis formula keeps its '|'
    total = markdown_cells(lines[-1])
    assert len(total) == len(header)
    assert total[0] == "total"
    assert f"{sum(r.params for r in rows):,}" in total


def test_lenet5_total_in_the_table():
    text = format_table(table(preset("lenet5")))
    assert "61,706" in text.splitlines()[-1]


def test_row_as_dict_has_lists_for_shapes():
    row = table(preset("course_3maps"))[0].as_dict()
    assert row["input_shape"] == [28, 28, 1] and row["output_shape"] == [24, 24, 3]
    assert row["params"] == 78 and row["name"] == "conv1"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shape_table_matches_traced_shapes_for_every_preset(name):
    net = Network.from_layers(preset(name))
    rows = shape_table(net, (28, 28, 1))
    traced = traced_shapes(net, (28, 28, 1))
    assert [row.name for row in rows] == list(net.names)
    assert {row.name: row.output_shape for row in rows} == traced


def test_shape_table_matches_traced_shapes_with_padding_and_local_layers():
    layers = [
        Conv(4, 3, stride=2, padding="SAME"), LocallyConnected(3, 3, padding=((0, 1), (2, 0))),
        Pool("l2", 3, stride=1, padding=1), Pool("none"), Dropout(0.2), Dense(7),
    ]
    net = Network.from_layers(layers)
    rows = shape_table(net, (13, 11, 2))
    assert {row.name: row.output_shape for row in rows} == traced_shapes(net, (13, 11, 2))
    # by hand: SAME s2 → ⌈13/2⌉×⌈11/2⌉ = 7×6 ; local → (7+1−2)×(6+2−2) = 6×6 ; pool 3, pad 1 → 6×6
    assert [row.output_shape for row in rows] == [
        (7, 6, 4), (6, 6, 3), (6, 6, 3), (6, 6, 3), (6, 6, 3), (7,)
    ]
