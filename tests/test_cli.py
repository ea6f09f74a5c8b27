"""The pairmi command end to end: files written, mi.npz equal to mi_layers, figures, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("matplotlib")

import pairmi
from pairmi.analysis import load
from pairmi.cli import main

TEXT = "Turkish coffee is brewed slowly in a small pot, and the grounds settle at the bottom of the cup. " * 2


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, path


def test_analyze_tiny_gpt2_end_to_end(tmp_path, tiny_gpt2_dir, capsys):
    text_file = tmp_path / "paragraph.txt"
    text_file.write_text(TEXT)
    out = tmp_path / "results"
    args = [
        "analyze",
        "--model",
        str(tiny_gpt2_dir),
        "--text-file",
        str(text_file),
        "--estimator",
        "equal_width",
        "--bins",
        "15",
        "--layers",
        "all",
        "--dims",
        "all",
        "--out",
        str(out),
        "--threads",
        "2",
    ]
    assert main(args) == 0
    for name in ("mi.npz", "summary.csv", "layers.png", "layer_L0.png", "layer_L2.png", "pair.png"):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert_png(png)
    saved = load(out)
    hs = pairmi.hidden_states(str(tiny_gpt2_dir), [TEXT])
    assert saved.tokens == hs.tokens and saved.layer_names == hs.layer_names
    np.testing.assert_array_equal(saved.mi, pairmi.mi_layers(hs.values, bins=15, threads=1, dtype=np.float32))
    assert saved.params["estimator"] == "equal_width" and saved.params["pairmi_version"] == pairmi.__version__
    lines = (out / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("layer,name,pairs,mean") and len(lines) == 1 + 3
    assert not (out / ".partial").exists() and not list(out.glob(".*.tmp*"))


def test_analyze_minilm_subset_and_plot(tmp_path):
    out = tmp_path / "r"
    assert (
        main(
            [
                "analyze",
                "--text",
                TEXT,
                "--layers",
                "0,6",
                "--dims",
                "0:100:2",
                "--estimator",
                "equal_frequency",
                "--bins",
                "8",
                "--units",
                "nats",
                "--out",
                str(out),
                "--no-figures",
            ]
        )
        == 0
    )
    saved = load(out / "mi.npz")
    assert saved.mi.shape == (2, 50, 50) and saved.layer_names == ["L0", "L6"]
    np.testing.assert_array_equal(saved.dims, np.arange(0, 100, 2))
    hs = pairmi.hidden_states("minilm", [TEXT], layers=[0, 6])
    want = pairmi.mi_layers(hs.values, dims=slice(0, 100, 2), estimator="equal_frequency", bins=8, units="nats", dtype=np.float32)
    np.testing.assert_array_equal(saved.mi, want)
    assert not (out / "layers.png").exists()
    assert main(["plot", str(out)]) == 0  # redraw without the model
    for name in ("layers.png", "layer_L0.png", "layer_L6.png", "pair.png"):
        assert_png(out / name)


def test_resume_reuses_saved_layers(tmp_path, tiny_gpt2_dir, monkeypatch):
    out = tmp_path / "r"
    base = ["analyze", "--model", str(tiny_gpt2_dir), "--text", TEXT, "--out", str(out), "--no-figures"]
    calls = []
    real = pairmi.analysis.mi_layers

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pairmi.analysis, "mi_layers", failing)
    assert main(base) == 130
    assert not (out / "mi.npz").exists()
    monkeypatch.setattr(pairmi.analysis, "mi_layers", real)
    computed = []
    monkeypatch.setattr(pairmi.analysis, "mi_layers", lambda *a, **k: computed.append(1) or real(*a, **k))
    assert main(base + ["--resume"]) == 0
    assert len(computed) == 2  # layer 0 came from the checkpoint
    hs = pairmi.hidden_states(str(tiny_gpt2_dir), [TEXT])
    np.testing.assert_array_equal(load(out).mi, pairmi.mi_layers(hs.values, dtype=np.float32))


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "--text", "x", "--out", "o", "--bins", "zero"],
        ["analyze", "--text", "x", "--out", "o", "--estimator", "magic"],
        ["analyze", "--text", "x"],
        ["analyze", "--text", "x", "--out", "o", "--dims", "1:2:3:4"],
        ["analyze", "--text", "x", "--out", "o", "--bins", "300"],
        ["analyze", "--text", "x", "--out", "o", "--seed", "-1"],
        ["analyze", "--corpus", "c.txt", "--out", "o", "--save-every", "nan"],
        ["lesson", "--seed", "-1"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_runtime_errors_exit_2(tmp_path, capsys):
    assert main(["analyze", "--text-file", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")]) == 2
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert main(["analyze", "--text", "a b c", "--bins", "40", "--out", str(tmp_path / "o")]) == 2  # 5 tokens
    assert main(["analyze", "--text", "a b c", "--dims", "0,999", "--out", str(tmp_path / "o")]) == 2  # 384 dims
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("pairmi ") for line in err), err
    assert "must not exceed the number of samples" in err[2] and "--dims: minilm's residual has 384 units" in err[3]


@pytest.mark.parametrize("command", [[], ["analyze"], ["plot"], ["demo"]])
def test_help_of_every_command(command):
    script = Path(sys.executable).parent / "pairmi"  # the installed console script
    done = subprocess.run([str(script), *command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage: pairmi" in done.stdout


def test_demo_runs_offline(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "demo done" in out and "L6" in out
    for estimator in pairmi.ESTIMATORS:
        saved = load(tmp_path / "demo" / estimator)
        assert saved.mi.shape[0] == 7 and saved.mi.shape[1] == 384
        assert_png(tmp_path / "demo" / estimator / "layers.png")


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "pairmi", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and pairmi.__version__ in done.stdout


@pytest.mark.parametrize(
    "extra,estimator",
    [
        (["--estimator", "ksg", "--k", "4"], "ksg"),
        (["--estimator", "gaussian_copula"], "gaussian_copula"),
        (["--estimator", "equal_frequency", "--bins", "auto", "--correction", "shuffle", "--null"], "equal_frequency"),
    ],
)
def test_analyze_other_estimators(tmp_path, extra, estimator):
    out = tmp_path / "r"
    assert main(["analyze", "--text", TEXT, "--layers", "0,3", "--dims", "0:24", "--out", str(out), *extra]) == 0
    saved = load(out)
    hs = pairmi.hidden_states("minilm", [TEXT], layers=[0, 3])
    kwargs: dict = {"estimator": estimator, "dims": slice(0, 24), "dtype": np.float32}  # mi.npz keeps float32
    kwargs.update({"k": 4} if estimator == "ksg" else {})
    kwargs.update({"bins": "auto", "correction": "shuffle"} if estimator == "equal_frequency" else {})
    np.testing.assert_array_equal(saved.mi, pairmi.mi_layers(hs.values, **kwargs))
    assert saved.params["estimator"] == estimator
    if "--null" in extra:
        assert saved.extra["null"].shape == (2, 24, 24)
        np.testing.assert_array_equal(
            saved.extra["null"][1],
            pairmi.null_mi(hs.values[1][:, :24], n_permutations=1, estimator=estimator, bins="auto")[0],
        )
    assert_png(out / "layers.png")


def test_text_file_problems_name_the_file(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(("Caf\xe9 cr\xe8me, tr\xe8s bien. " * 6).encode("latin-1"))
    base = ["analyze", "--out", str(tmp_path / "r"), "--no-figures", "--threads", "1"]
    assert main(base + ["--text-file", str(empty)]) == 2
    assert f"--text-file {empty} is empty" in capsys.readouterr().err
    assert main(base + ["--text-file", str(latin)]) == 2
    err = capsys.readouterr().err
    assert f"--text-file {latin} is not valid utf-8 text" in err and "--encoding" in err
    assert main(base + ["--text-file", str(latin), "--encoding", "latin-1", "--layers", "0,1"]) == 0
    assert main(base + ["--text-file", str(latin), "--encoding", "klingon"]) == 2
    assert "not an encoding" in capsys.readouterr().err


def test_out_that_is_a_file_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import pairmi.models

    monkeypatch.setattr(pairmi.models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["analyze", "--text", "some text", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"--out {target} is a file" in err and ".partial" not in err and "tmp" not in err.split(str(tmp_path))[0]


def test_reusing_out_needs_overwrite_and_leaves_no_stale_files(tmp_path, tiny_gpt2_dir, capsys):
    out = tmp_path / "r"
    base = ["analyze", "--model", str(tiny_gpt2_dir), "--text", TEXT, "--out", str(out), "--threads", "1"]
    assert main(base + ["--layers", "0,1,2"]) == 0
    assert (out / "layer_L1.png").exists() is False and (out / "layer_L2.png").exists()
    capsys.readouterr()
    assert main(base + ["--layers", "0,1"]) == 2
    err = capsys.readouterr().err
    assert "holds the results of an earlier pairmi run" in err and "pass --overwrite" in err
    assert main(base + ["--layers", "0,1", "--overwrite"]) == 0
    assert not (out / "layer_L2.png").exists() and (out / "layer_L1.png").exists()  # the earlier figure is gone
    assert load(out).layer_names == ["L0", "L1"]


def test_overwrite_removes_only_the_files_pairmi_wrote(tmp_path, tiny_gpt2_dir, capsys):
    """A user's files that look like outputs (layers.py, pair.txt) survive --overwrite; without it
    they are not called an earlier run."""
    out = tmp_path / "res"
    out.mkdir()
    (out / "layers.py").write_text("code")
    (out / "pair.txt").write_text("notes")
    base = ["analyze", "--model", str(tiny_gpt2_dir), "--text", TEXT, "--dims", "0:8", "--out", str(out), "--threads", "1"]
    assert main(base + ["--no-figures", "--overwrite"]) == 0
    assert main(base + ["--no-figures", "--layers", "0,1,2"]) == 2
    err = capsys.readouterr().err
    assert "earlier pairmi run (mi.npz, summary.csv)" in err and "layers.py" not in err and "pair.txt" not in err
    assert main(base + ["--overwrite"]) == 0
    assert main(base + ["--overwrite", "--layers", "0,1"]) == 0
    assert (out / "layers.py").read_text() == "code" and (out / "pair.txt").read_text() == "notes"
    assert not (out / "layer_L2.png").exists() and (out / "layer_L1.png").exists()
    written = json.loads((out / ".pairmi-written.json").read_text())["files"]
    assert "layers.py" not in written and {"mi.npz", "summary.csv", "layers.png", "pair.png"} <= set(written)


def test_overwrite_of_a_folder_written_before_manifests(tmp_path, tiny_gpt2_dir):
    """No manifest: an earlier run is recognised by its mi.npz, and only its exact output names (the
    layer figures named from the layers its mi.npz records) are removed."""
    out = tmp_path / "old"
    base = ["analyze", "--model", str(tiny_gpt2_dir), "--text", TEXT, "--dims", "0:8", "--out", str(out), "--threads", "1"]
    assert main(base + ["--layers", "0,1,2"]) == 0
    (out / ".pairmi-written.json").unlink()
    mine = ["layers.py", "pair.txt", "layer_notes.md", "summary.csv.bak"]
    for name in mine:
        (out / name).write_text("mine")
    assert main(base + ["--layers", "0,1"]) == 2
    assert main(base + ["--layers", "0,1", "--overwrite"]) == 0
    assert not (out / "layer_L2.png").exists() and load(out).layer_names == ["L0", "L1"]
    assert all((out / name).read_text() == "mine" for name in mine)


def test_site_takes_what_python_takes(tmp_path, tiny_gpt2_dir):
    """--site: attention outputs and named submodules (comma-separated, one per layer), as in Python."""
    base = ["analyze", "--model", str(tiny_gpt2_dir), "--text", TEXT, "--threads", "1", "--no-figures"]
    assert main(base + ["--site", "h.0.mlp,h.1.mlp", "--out", str(tmp_path / "named")]) == 0
    named = load(tmp_path / "named")
    assert named.layer_names == ["h.0.mlp", "h.1.mlp"] and named.params["site"] == "h.0.mlp,h.1.mlp"
    hs = pairmi.hidden_states(str(tiny_gpt2_dir), [TEXT], site=["h.0.mlp", "h.1.mlp"])
    np.testing.assert_array_equal(named.mi, pairmi.mi_layers(hs.values, dtype=np.float32))
    assert main(base + ["--site", "attention", "--out", str(tmp_path / "attn")]) == 0
    assert load(tmp_path / "attn").layer_names == ["attn0", "attn1"]


def test_null_is_one_switch():
    from pairmi.cli import build_parser

    parse = build_parser().parse_args
    base = ["analyze", "--text", "x", "--out", "o"]
    assert [parse(base + extra).null for extra in ([], ["--null"], ["--no-null"])] == [None, True, False]


def test_huge_text_file_fails_with_one_line(tmp_path, capsys):
    """/dev/zero (or any huge file) is read up to a cap, not into memory without bound."""
    assert main(["analyze", "--text-file", "/dev/zero", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "larger than 16 MiB" in err[0] and "--corpus" in err[0]


def test_ctrl_c_before_any_layer_claims_nothing_kept(tmp_path, tiny_gpt2_dir, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pairmi.analysis, "mi_layers", interrupted)
    out = tmp_path / "r"
    assert main(["analyze", "--model", str(tiny_gpt2_dir), "--text", TEXT, "--out", str(out), "--no-figures"]) == 130
    err = capsys.readouterr().err
    assert "no layer had finished, so nothing was kept" in err and "--resume" not in err
    assert not (out / ".partial").exists()


def test_every_estimator_gets_its_null_by_default(tmp_path, tiny_gpt2_dir, capsys):
    """The shuffled-token null is computed, printed and saved for every estimator (KSG and the
    copula too: their values also sit above zero under independence); --no-null skips it."""
    args = ["analyze", "--model", str(tiny_gpt2_dir), "--text", TEXT, "--threads", "1", "--no-figures"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "null (shuffled tokens), mean over layers and pairs" in out and "the plug-in bias" in out
    assert "exceed the null's 95th percentile" in out and "null" in load(tmp_path / "a").extra
    assert main(args + ["--out", str(tmp_path / "b"), "--no-null"]) == 0
    assert "null (shuffled" not in capsys.readouterr().out and "null" not in load(tmp_path / "b").extra
    for estimator in ("ksg", "gaussian_copula"):
        out_dir = tmp_path / estimator
        assert main(args + ["--out", str(out_dir), "--estimator", estimator]) == 0
        assert "what independence gives" in capsys.readouterr().out
        saved = load(out_dir)
        # The null is the same estimator on tokens shuffled per unit (seeded): checked against a shuffle here.
        hs = pairmi.hidden_states(str(tiny_gpt2_dir), [TEXT])
        shuffled = np.random.default_rng(0).permuted(hs.values[0], axis=0)
        want = pairmi.mi_matrix(shuffled, estimator=estimator, dtype=np.float32)
        np.testing.assert_allclose(saved.extra["null"][0], want, rtol=1e-6, atol=1e-6)


def test_degenerate_units_pair_choice_formats_and_saved_states(tmp_path, capsys):
    """MiniLM's last layer has units scaled by ~1e-32 (127, 223, 319): reported, counted in
    summary.csv and skipped by the pair figure, which is chosen against the null and says so."""
    text = "Turkish coffee is brewed slowly in a small pot, and the grounds settle at the bottom of the cup. " * 3
    out = tmp_path / "r"
    assert (
        main(
            [
                "analyze",
                "--text",
                text,
                "--layers",
                "0,6",
                "--out",
                str(out),
                "--threads",
                "2",
                "--save-states",
                "none",
                "--format",
                "svg",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "degenerate units" in printed and "L6: 127, 223, 319" in printed
    saved = load(out)
    assert saved.hidden_states is None and "degenerate" in saved.extra
    np.testing.assert_array_equal(np.flatnonzero(saved.extra["degenerate"][1]), [127, 223, 319])
    header, _first, last = (out / "summary.csv").read_text().splitlines()
    assert "degenerate_units" in header and last.split(",")[header.split(",").index("degenerate_units")] == "3"
    assert last.split(",")[header.split(",").index("degenerate_unit_ids")] == "127 223 319"
    assert (out / "pair.svg").exists()  # drawn from the run's states before mi.npz dropped them
    assert (out / "layers.svg").read_text().lstrip().startswith("<?xml")
    assert main(["plot", str(out), "--out", str(tmp_path / "redrawn")]) == 0
    assert not (tmp_path / "redrawn" / "pair.png").exists()  # no states saved: no pair to redraw
    from pairmi.figures import chosen_pair

    again = tmp_path / "s"
    assert main(["analyze", "--text", text, "--layers", "0,6", "--out", str(again), "--threads", "2", "--no-figures"]) == 0
    analysis = load(again)
    assert analysis.hidden_states.shape[1] == len(analysis.tokens)  # under 2,000 tokens: all kept
    k, i, j, how = chosen_pair(analysis)
    assert k == 1 and {i, j}.isdisjoint({127, 223, 319}) and "above its shuffled-token null" in how
    corrected = analysis.mi[1] - analysis.extra["null"][1]
    assert corrected[i, j] == max(
        corrected[a, b] for a in range(384) for b in range(384) if a != b and not {a, b} & {127, 223, 319}
    )
    assert chosen_pair(analysis, ("L0", 5, 7))[:3] == (0, 5, 7)
    with pytest.raises(ValueError, match="not among the analysed units"):
        chosen_pair(analysis, (0, 5, 999))
    assert main(["plot", str(again), "--pair", "L6,12,305", "--dpi", "50"]) == 0
    assert (again / "pair.png").exists()


def test_save_states_sample_keeps_a_seeded_subset(tmp_path):
    from pairmi.analysis import Analysis, save

    values = np.random.default_rng(0).normal(size=(2, 5000, 3)).astype(np.float32)
    a = Analysis(np.zeros((2, 3, 3), np.float32), ["L0", "L1"], ["t"] * 5000, np.arange(3), {}, values)
    save(a, tmp_path / "a")
    saved = load(tmp_path / "a")
    index = saved.extra["states_index"]
    assert saved.hidden_states.shape == (2, 2000, 3) and np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(saved.hidden_states, values[:, index])
    save(a, tmp_path / "b", states="all")
    assert load(tmp_path / "b").hidden_states.shape == (2, 5000, 3)
    with pytest.raises(ValueError, match="states must be one of"):
        save(a, tmp_path / "c", states="some")


def test_layers_and_dims_are_checked_against_the_config_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import pairmi.models

    monkeypatch.setattr(pairmi.models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["analyze", "--text", "some text", "--layers", "0,9", "--out", str(tmp_path / "o")]) == 2
    assert "--layers 0,9: minilm has 7 residual layers" in capsys.readouterr().err
    assert main(["analyze", "--text", "some text", "--layers", "6", "--site", "mlp", "--out", str(tmp_path / "o")]) == 2
    assert "has 6 mlp layers" in capsys.readouterr().err
    assert main(["analyze", "--text", "some text", "--site", "mlp", "--dims", "0,1536", "--out", str(tmp_path / "o")]) == 2
    assert "minilm's mlp has 1536 units" in capsys.readouterr().err
    assert main(["analyze", "--text", "some text", "--dims", "383:", "--out", str(tmp_path / "o")]) == 2
    assert "--dims selects 1 of minilm's 384 residual units" in capsys.readouterr().err


def test_analyze_in_memory_with_the_position_null(tmp_path, capsys):
    """--position-lags on a text of many windows: extra['position_null'] equals pairmi.position_null
    binned as the observed MI is, and the report, summary.csv and figures use it."""
    import numpy as np

    import pairmi
    from pairmi.corpus import python_docstrings

    text = tmp_path / "t.txt"
    text.write_text(" ".join(d.replace("\n", " ") for _, d in zip(range(4), python_docstrings())))
    out = tmp_path / "o"
    args = ["analyze", "--text-file", str(text), "--max-length", "32", "--dims", "0:12", "--estimator", "equal_frequency"]
    assert main([*args, "--bins", "5", "--position-lags", "1", "--out", str(out), "--no-figures"]) == 0
    assert "MI from position alone (units 1 window(s) apart)" in capsys.readouterr().out
    saved = pairmi.analysis.load(out / "mi.npz")
    windows = saved.params["window_tokens"]
    values = saved.hidden_states[:, :, :12]
    edges = pairmi.fit_edges(values, "equal_frequency", bins=5)
    want = pairmi.position_null(values, windows, lags=1, estimator="equal_frequency", edges=edges)
    np.testing.assert_allclose(saved.extra["position_null"], want, rtol=0, atol=1e-12)
    assert "beyond_position_mean" in (out / "summary.csv").read_text()
    assert main([*args, "--position-lags", "500", "--out", str(tmp_path / "p")]) == 2
    assert "windows 500 apart" in capsys.readouterr().err
