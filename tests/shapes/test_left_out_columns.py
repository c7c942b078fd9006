"""The columns a trainer leaves out of the features are logged with the reason on its run (`dropped_columns`), for
the shapes whose tables hold such columns; the models are the matrix's own (trained once per session)."""

from __future__ import annotations

import re

import pytest

from tests.shapes.shapes import BY_ID

LEFT_OUT_CHAINS = [(trainer, "time_columns") for trainer in ("sklearn", "mllib", "per_group")]


@pytest.mark.parametrize(("trainer", "shape_id"), LEFT_OUT_CHAINS, ids=[f"{t}-{s}" for t, s in LEFT_OUT_CHAINS])
def test_left_out_columns_are_logged_with_their_reason(trained_models, trainer, shape_id):
    shape = BY_ID[shape_id]
    trained = trained_models.get(trainer, shape)
    trained.require_model()
    logged = trained.store.client().get_run(trained.result.run_id).data.params["dropped_columns"]
    reasons = dict(re.findall(r"(\w+) \((a time column \([^)]*\))\)", logged))
    assert list(reasons) == list(shape.left_out), logged
    assert not set(shape.left_out) & set(trained.features)
