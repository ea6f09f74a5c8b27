"""The estimator objects and the shared settings: the same numbers as the names with keywords,
their checks, what results record, and the analysis checkpoint keyed by inputs and settings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from datagen import make

import pairmi
from pairmi import analysis
from pairmi.settings import DEFAULT_BINS, Settings, as_estimator, recorded

X = make("mixed", 300, 6, 0)

OBJECTS = [
    (pairmi.EqualWidth(bins=8), {"estimator": "equal_width", "bins": 8}),
    (pairmi.EqualWidth(bins=8, correction="miller_madow"), {"estimator": "equal_width", "bins": 8, "correction": "miller_madow"}),
    (pairmi.EqualFrequency(bins="auto"), {"estimator": "equal_frequency", "bins": "auto"}),
    (pairmi.KSG(k=5), {"estimator": "ksg", "k": 5}),
    (pairmi.KSG(noise=1e-10), {"estimator": "ksg", "noise": 1e-10}),
    (pairmi.GaussianCopula(), {"estimator": "gaussian_copula"}),
]


@pytest.mark.parametrize("obj,keywords", OBJECTS, ids=[repr(o) for o, _ in OBJECTS])
def test_an_object_gives_the_numbers_of_its_name_and_keywords(obj, keywords):
    np.testing.assert_array_equal(pairmi.mi_matrix(X, estimator=obj), pairmi.mi_matrix(X, **keywords))
    H = np.stack([X, X[::-1]])
    np.testing.assert_array_equal(pairmi.mi_layers(H, estimator=obj), pairmi.mi_layers(H, **keywords))


def test_objects_everywhere_else():
    ew = pairmi.EqualWidth(bins=7)
    np.testing.assert_array_equal(pairmi.null_mi(X, estimator=ew, n_permutations=3), pairmi.null_mi(X, bins=7, n_permutations=3))
    np.testing.assert_array_equal(
        pairmi.mi_test(X, estimator=ew, n_permutations=9).p_value, pairmi.mi_test(X, bins=7, n_permutations=9).p_value
    )
    np.testing.assert_array_equal(
        pairmi.fit_edges(X, pairmi.EqualFrequency(bins=9)), pairmi.fit_edges(X, "equal_frequency", bins=9)
    )
    acc = pairmi.Accumulator(pairmi.EqualFrequency(bins=9)).update(X)
    np.testing.assert_array_equal(acc.result(), pairmi.Accumulator("equal_frequency", bins=9).update(X).result())
    top = pairmi.mi_topk(X, n_partners=2, estimator=pairmi.KSG(k=4))
    np.testing.assert_array_equal(top.values, pairmi.mi_topk(X, n_partners=2, estimator="ksg", n_neighbors=4).values)


def test_defaults_live_in_one_place():
    assert pairmi.EqualWidth().bins == DEFAULT_BINS == 15 and pairmi.KSG().k == 3
    np.testing.assert_array_equal(pairmi.mi_matrix(X), pairmi.mi_matrix(X, bins=15))
    assert pairmi.mi_matrix(X).dtype == pairmi.mi_layers(X[None]).dtype == np.float64  # one dtype rule
    assert pairmi.mi_layers(X[None], dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize(
    "make_bad,exc,words",
    [
        (lambda: pairmi.EqualWidth(bins=1), ValueError, "bins must be in [2, 255]"),
        (lambda: pairmi.EqualWidth(bins=2.5), TypeError, "bins must be an integer"),
        (lambda: pairmi.EqualFrequency(correction="jackknife"), ValueError, "correction must be one of"),
        (lambda: pairmi.KSG(k=0), ValueError, "k must be a positive integer"),
        (lambda: pairmi.KSG(noise=2.0), ValueError, "noise must be a number in [0, 1)"),
        (lambda: pairmi.mi_matrix(X, estimator=pairmi.KSG(k=5), k=4), ValueError, "k given as keyword(s) with the estimator"),
        (lambda: pairmi.mi_matrix(X, estimator="ksg", correction="miller_madow"), ValueError, "applies to the binned"),
        (lambda: pairmi.mi_matrix(X, estimator="bogus"), ValueError, "or an estimator object"),
        (lambda: pairmi.mi_matrix(X[:20], estimator=pairmi.KSG(k=20)), ValueError, "k must be an integer in [1, n_samples - 1]"),
        (
            lambda: pairmi.mi_test(X, estimator=pairmi.EqualWidth(correction="shuffle"), n_permutations=3),
            ValueError,
            "mi_test works on plug-in MI: the estimator's correction='shuffle' does not apply",
        ),
        (
            lambda: pairmi.null_mi(X, estimator=pairmi.EqualFrequency(bins=5, correction="miller_madow")),
            ValueError,
            "null_mi works on plug-in MI",
        ),
    ],
)
def test_bad_settings_are_named(make_bad, exc, words):
    with pytest.raises(exc) as info:
        make_bad()
    assert words in str(info.value)


def test_objects_are_frozen_and_record_their_parameters():
    ksg = pairmi.KSG(k=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ksg.k = 5  # type: ignore[misc]
    assert ksg.params() == {"estimator": "ksg", "k": 4, "noise": 0.0}
    assert pairmi.EqualWidth().params() == {"estimator": "equal_width", "bins": 15, "correction": None}
    assert recorded({"estimator": "ksg", "k": 4, "units": "nats"}) == {"estimator": "ksg", "k": 4, "noise": 0.0, "units": "nats"}
    assert recorded({"estimator": ksg}) == recorded({"estimator": "ksg", "k": 4})
    s = Settings.resolve(90, as_estimator("equal_frequency", bins="auto", correction="shuffle"), n_permutations=7, seed=3)
    assert s.bins == 5 and s.params() == {
        "estimator": "equal_frequency",
        "units": "bits",
        "bins": 5,
        "correction": "shuffle",
        "n_permutations": 7,
        "seed": 3,
    }
    assert as_estimator(ksg) is ksg
    assert s.estimator == pairmi.EqualFrequency(bins="auto", correction="shuffle") and s.name == "equal_frequency"
    with pytest.raises(TypeError, match="estimator object"):
        Settings.resolve(90, "equal_frequency")  # below the public door, objects only


class States:
    """The parts of pairmi.HiddenStates that analyze reads."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.layer_names = [f"L{i}" for i in range(len(values))]
        self.tokens = [f"t{i}" for i in range(values.shape[1])]
        self.site, self.model_name, self.meta = "residual", "synthetic", {}


def test_checkpoint_resumes_only_the_same_inputs_and_settings(tmp_path):
    H = np.stack([make("normal", 120, 8, s) for s in range(3)]).astype(np.float32)
    folder = tmp_path / "ckpt"
    seen: list[bool] = []
    first = analysis.analyze(States(H), checkpoint_dir=folder, bins=6, on_layer=lambda i, n, resumed: seen.append(resumed))
    assert seen == [False] * 3 and analysis.checkpoint_layers(folder) == 3
    seen.clear()
    again = analysis.analyze(States(H), checkpoint_dir=folder, bins=6, on_layer=lambda i, n, resumed: seen.append(resumed))
    assert seen == [True] * 3
    np.testing.assert_array_equal(again.mi, first.mi)
    for other in ({"bins": 7}, {"bins": 6, "units": "nats"}):  # other settings: computed again
        seen.clear()
        analysis.analyze(States(H), checkpoint_dir=folder, on_layer=lambda i, n, resumed: seen.append(resumed), **other)
        assert seen == [False] * 3
    seen.clear()
    changed = H.copy()
    changed[0, 0, 0] += 1.0  # other states: computed again
    analysis.analyze(States(changed), checkpoint_dir=folder, bins=7, on_layer=lambda i, n, resumed: seen.append(resumed))
    analysis.analyze(
        States(changed), checkpoint_dir=folder, bins=7, resume=False, on_layer=lambda i, n, resumed: seen.append(resumed)
    )
    assert seen == [False] * 6
    analysis.remove_checkpoint(folder)
    assert not folder.exists()


def test_analysis_null_is_of_the_plug_in_estimator():
    """A corrected estimator object's analysis draws its null from the plug-in MI of the same bins."""
    H = np.stack([make("normal", 120, 6, s) for s in range(2)]).astype(np.float32)
    est = pairmi.EqualFrequency(bins=6, correction="miller_madow")
    run = analysis.analyze(States(H), null=True, estimator=est, seed=4)
    assert run.params["correction"] == "miller_madow" and run.params["bins"] == 6
    want = [pairmi.null_mi(h, n_permutations=1, estimator="equal_frequency", bins=6, seed=4)[0] for h in H]
    np.testing.assert_allclose(run.extra["null"], np.stack(want), rtol=0, atol=1e-6)  # mi.npz's float32
    np.testing.assert_allclose(run.mi, pairmi.mi_layers(H, estimator=est), rtol=0, atol=1e-6)
