"""Smoke test of the benchmark (no timing assertions): tiny step counts, both frameworks when
PyTorch is importable, the JAX side alone otherwise (CI installs only requirements.txt)."""

from __future__ import annotations

import pytest

from cnn_jax.bench import BenchSettings, run_benchmark
from cnn_jax.bench.report import TABLE_HEADER, markdown
from cnn_jax.bench.runner import PROJECT, TORCH, bench_vmap, torch_available


def columns(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@pytest.mark.parametrize("without_torch", [False, True])
def test_benchmark_smoke_table_structure(without_torch, monkeypatch):
    if without_torch:
        if not torch_available():
            pytest.skip("already covered: PyTorch is not installed here")
        monkeypatch.setattr("cnn_jax.bench.runner.torch_available", lambda: False)
    batches = (4,)  # a row per batch size: one is the table's structure
    settings = BenchSettings(networks=("course_3maps",), batch_sizes=batches, steps=2, repeats=2,
                             eval_size=6, compile_cache=False, baseline=not without_torch)
    report = run_benchmark(settings, log=lambda *_: None)
    assert report["torch"] == (torch_available() and not without_torch)
    assert len(report["rows"]) == len(batches)
    for row in report["rows"]:
        participants = row["results"]
        assert PROJECT in participants and (TORCH in participants) == report["torch"]
        for result in participants.values():
            assert result["train"]["n"] == 2 and result["train"]["median"] > 0
            assert result["eval"]["median"] > 0 and result["peak_rss_mb"] > 0
        assert participants[PROJECT]["compile_s"] > 0
    text = markdown(report)
    lines = text.splitlines()
    header = lines.index(TABLE_HEADER)
    width = len(columns(TABLE_HEADER))
    assert set(columns(lines[header + 1])) == {"---"} and len(columns(lines[header + 1])) == width
    body = lines[header + 2: header + 2 + len(batches)]
    for line, batch in zip(body, batches, strict=True):
        cells = columns(line)
        assert len(cells) == width
        assert cells[0] == "course_3maps" and cells[1] == str(batch)
        assert ("×" in cells[4]) == report["torch"]
    assert "Load average" in text and "cores" in text
    if not report["torch"]:
        assert "PyTorch was skipped" in text


def test_vmap_over_models_runs_on_cpu():
    settings = BenchSettings(steps=2, repeats=1)
    row = bench_vmap(BenchSettings(**{**settings.__dict__, "vmap_models": 2}),
                     "nielsen_cp2_fc100_relu", 4)
    assert row["models"] == 2 and row["train"]["median"] > 0 and row["compile_s"] > 0


def test_torch_model_has_the_same_architecture():
    pytest.importorskip("torch")
    import jax

    from cnn_jax.bench.models import NETWORKS, torch_model
    from cnn_jax.network import Network, count_params
    from cnn_jax.presets import preset

    for name in NETWORKS:
        model = torch_model(preset(name))
        params = Network.from_layers(preset(name)).init(jax.random.key(0), (28, 28, 1))
        assert sum(p.numel() for p in model.parameters()) == count_params(params)


def test_write_section_replaces_only_the_marked_block(tmp_path):
    from cnn_jax.markdown import BEGIN, END, write_section

    path = tmp_path / "B.md"
    path.write_text("# Title\n\nnotes\n")
    write_section(str(path), "first\n")
    write_section(str(path), "second\n")
    text = path.read_text()
    assert text.startswith("# Title\n\nnotes\n") and "second" in text and "first" not in text
    assert text.count(BEGIN) == 1 and text.count(END) == 1


def test_the_init_compile_is_timed_both_ways_and_reported():
    import dataclasses

    from cnn_jax.bench.worker import init_compile_times
    from cnn_jax.provenance import machine_info

    times = init_compile_times({"network": "course_3maps"})
    assert set(times) == {"init_run_once", "init_default"} and min(times.values()) > 0
    report = {"settings": dataclasses.asdict(BenchSettings()), "torch": False, "rows": [],
              "machine": machine_info("cpu"), "load_before": (0, 0, 0),
              "load_after": (0, 0, 0), "wall_s": 1,
              "compile_cache": {"cold": 1.0, "cold_process_s": 3.0, "warm": 0.2,
                                "warm_process_s": 2.0, **times}}
    line = next(line for line in markdown(report).splitlines()
                if line.startswith("Parameter initialisation"))
    assert f"{times['init_run_once']:.2f} s as a run-once program" in line
    assert f"{times['init_default']:.2f} s at XLA's default level" in line
