"""The claims behind ``UNUSED_DISTS``, checked against the real skops in the repo venv.

If a future skops starts importing prettytable from ``skops.io`` (the module that loads a
``.skops`` model), this fails and the table entry must go.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from mlflow_lambda.packager.prune_unused import UNUSED_DISTS

pytestmark = pytest.mark.integration

# Save and load a fitted forest the way the skops flavor does, then report what got imported.
PROBE = """
import json, sys
import numpy as np
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier

rng = np.random.default_rng(0)
x = rng.normal(size=(30, 3))
y = (x[:, 0] > x[:, 1]).astype(int)
model = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
blob = sio.dumps(model)
loaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
print(json.dumps({
    "same": loaded.predict(x).tolist() == model.predict(x).tolist(),
    "loaded": sorted({name.split(".")[0] for name in sys.modules}),
}))
"""


def test_skops_io_saves_and_loads_without_the_unused_distributions() -> None:
    # The check means something only where the distributions are installed to be imported.
    skops_extras = {"prettytable", "wcwidth"}  # skops needs them only for model cards
    assert skops_extras <= set(UNUSED_DISTS)
    assert all(importlib.util.find_spec(name) is not None for name in skops_extras)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same"] is True
    assert "skops" in result["loaded"]
    assert sorted(set(UNUSED_DISTS) & set(result["loaded"])) == []
