"""Every public function's result on fixed inputs equals the saved golden output: bit for bit, KSG
and the copula within 1e-12 bits (tests/golden.py says why and how to regenerate)."""

from __future__ import annotations

import numpy as np
import pytest
from golden import LOOSE, PATH, cases

with np.load(PATH) as _z:
    SAVED = {k: _z[k] for k in _z.files}
INPUTS = {k.removeprefix("input/"): v for k, v in SAVED.items() if k.startswith("input/")}
WANT = {k.removeprefix("output/"): v for k, v in SAVED.items() if k.startswith("output/")}
CASES = cases(INPUTS)


def test_every_case_has_a_golden_output():
    missing = sorted(set(CASES) - set(WANT))
    assert not missing, f"cases without a saved output (run python tests/golden.py --write): {missing}"


@pytest.mark.parametrize("name", sorted(set(CASES) & set(WANT)))
def test_result_equals_the_golden_output(name):
    got, want = np.asarray(CASES[name]()), WANT[name]
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    tol = LOOSE.get(name.split("/")[0])
    if tol is None or "topk_indices" in name:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
