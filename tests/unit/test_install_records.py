"""``packager.install.drop_outside_records``: RECORD lines for removed console scripts go."""

from __future__ import annotations

from pathlib import Path

from mlflow_lambda.packager.install import drop_outside_records


def test_record_lines_outside_the_tree_are_dropped(tmp_path: Path) -> None:
    info = tmp_path / "numpy-2.4.6.dist-info"
    info.mkdir()
    record = (
        "../../bin/f2py,sha256=4ZefIU6f_oL-jA2dgt-NUdeWu4yt2L6LZDxEB5XobGA,175\n"
        "numpy/__init__.py,sha256=abc,10\n"
        "../../bin/numpy-config,sha256=AxOfjffuOJ_9ExDuAmv0V9zEcQi0IqGgLqWrReSjAa8,175\n"
        "numpy-2.4.6.dist-info/RECORD,,\n"
    )
    (info / "RECORD").write_text(record)
    other = tmp_path / "idna-3.20.dist-info"
    other.mkdir()
    (other / "RECORD").write_text("idna/__init__.py,sha256=x,1\n")
    assert drop_outside_records(tmp_path) == 2
    assert (info / "RECORD").read_text() == (
        "numpy/__init__.py,sha256=abc,10\nnumpy-2.4.6.dist-info/RECORD,,\n"
    )
    assert (other / "RECORD").read_text() == "idna/__init__.py,sha256=x,1\n"
    assert drop_outside_records(tmp_path) == 0  # idempotent
