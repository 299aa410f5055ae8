"""size_report groups files by distribution; check_limits enforces Lambda's quotas."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mlflow_lambda.packager.errors import BundleTooLargeError
from mlflow_lambda.packager.sizes import MB, Row, SizeReport, check_limits, size_report

# group -> files (relative path -> content); the groups are what size_report must find.
TREE: dict[str, dict[str, str]] = {
    "numpy": {
        "numpy/__init__.py": "x" * 1000,
        "numpy/__pycache__/__init__.cpython-312.pyc": "p" * 400,
        "numpy.libs/libopenblas.so": "b" * 3000,
        "numpy-2.4.6.dist-info/METADATA": "Metadata-Version: 2.1\nName: numpy\n\nbody\n",
        "numpy-2.4.6.dist-info/RECORD": "numpy/__init__.py,,\nnumpy.libs/libopenblas.so,,\n",
    },
    "scikit-learn": {
        "sklearn/__init__.py": "s" * 700,
        "scikit_learn.libs/libgomp.so": "g" * 200,
        "scikit_learn-1.9.1.dist-info/METADATA": "Name: scikit-learn\n",
        "scikit_learn-1.9.1.dist-info/RECORD": (
            "sklearn/__init__.py,,\nscikit_learn.libs/libgomp.so,,\n../../bin/x,,\n"
        ),
    },
    "six": {
        "six.py": "6" * 300,
        "__pycache__/six.cpython-312.pyc": "c" * 100,
        "six-1.17.0.dist-info/RECORD": "six.py,,\n__pycache__/six.cpython-311.pyc,,\n",
    },
    "foo": {  # no RECORD: fall back on the names
        "foo/__init__.py": "f" * 50,
        "foo.libs/libfoo.so": "l" * 60,
        "foo-1.0.dist-info/METADATA": "Name: foo\n",
    },
    "model": {"model/model.pkl": "m" * 120, "model/MLmodel": "flavors: {}\n", "model.json": "{}"},
    "handler": {"handler/lambda_function.py": "h" * 80},
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "staging"
    for files in TREE.values():
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    return root


def _size(group: str) -> int:
    return sum(len(text) for text in TREE[group].values())


def test_rows_group_packages_libs_and_dist_info(tree: Path) -> None:
    report = size_report(tree)
    packages = sorted(["numpy", "scikit-learn", "six", "foo"], key=lambda g: -_size(g))
    assert report == SizeReport(
        rows=[Row(g, _size(g), None, len(TREE[g])) for g in [*packages, "model", "handler"]],
        unzipped=sum(_size(g) for g in TREE),
        zipped=None,
    )


def test_zipped_sizes_add_up_to_the_zip_file(tree: Path, tmp_path: Path) -> None:
    zip_path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as zf:
        for files in TREE.values():
            for rel in sorted(files):
                zf.write(tree / rel, rel)
    report = size_report(tree, zip_path)
    zipped = {r.name: r.zipped for r in report.rows}
    assert zipped == {
        g: sum(len(text) + 76 + 2 * len(rel) for rel, text in files.items())
        for g, files in TREE.items()
    }
    end_of_central_directory = 22
    assert report.zipped == zip_path.stat().st_size
    assert sum(zipped.values()) + end_of_central_directory == report.zipped  # type: ignore[arg-type]


def test_image_context_counts_deps_and_app_as_one_task_root(tree: Path, tmp_path: Path) -> None:
    context = tmp_path / "image"
    (context / "app").mkdir(parents=True)
    for name in ("handler", "model", "model.json"):
        (tree / name).rename(context / "app" / name)
    tree.rename(context / "deps")
    (context / "Dockerfile").write_text("FROM scratch\n")
    by_name = {r.name: r.unzipped for r in size_report(context).rows}
    assert by_name == {g: _size(g) for g in TREE}
    assert size_report(context).unzipped == sum(_size(g) for g in TREE)


def test_format_is_a_table_with_a_total() -> None:
    report = SizeReport(
        [Row("scipy", 85 * MB, 28 * MB, 10), Row("model", MB // 10, MB // 5, 2)],
        85 * MB + MB // 10,
        28 * MB + MB // 5,
    )
    assert report.format() == (
        "size by package:\n"
        "package    unzipped      zipped\n"
        "scipy       85.0 MB     28.0 MB\n"
        "model        0.1 MB      0.2 MB\n"
        "total       85.1 MB     28.2 MB"
    )


def _report(unzipped_mb: float, zipped_mb: float | None) -> SizeReport:
    rows = [
        Row("scipy", int(unzipped_mb * MB * 0.6), None, 1),
        Row("numpy", int(unzipped_mb * MB * 0.3), None, 1),
        Row("model", int(unzipped_mb * MB * 0.1), None, 1),
    ]
    zipped = None if zipped_mb is None else int(zipped_mb * MB)
    return SizeReport(rows, sum(r.unzipped for r in rows), zipped)


def test_over_250_mb_unzipped_raises_with_breakdown_and_ways_out() -> None:
    report = _report(300, 90)
    with pytest.raises(BundleTooLargeError) as caught:
        check_limits(report)
    assert str(caught.value) == (
        "bundle is 300.0 MB unzipped, over Lambda's 250 MB limit for zip packages by 50.0 MB; "
        "largest: scipy 180.0 MB, numpy 90.0 MB, model 30.0 MB. Ways out: --target image "
        "(container images may be 10 GB), or --model-location s3://<bucket>/<prefix> "
        "(the model, 30.0 MB, is then fetched to /tmp at cold start).\n" + report.format()
    )


def test_over_50_mb_zipped_warns_about_direct_upload() -> None:
    assert check_limits(_report(200, 60)) == [
        "bundle.zip is 60.0 MB, over the 50 MB limit for uploading a zip directly to Lambda: "
        "upload it through S3 (`sam deploy` does this anyway, with --s3-bucket or "
        "--resolve-s3); `aws lambda update-function-code --zip-file` will be refused."
    ]


def test_within_limits_no_warnings_and_image_target_allows_large_bundles() -> None:
    assert check_limits(_report(250, 50)) == []
    assert check_limits(_report(300, None), target="image") == []
    with pytest.raises(BundleTooLargeError, match=r"^image content is 10250\.0 MB, over"):
        check_limits(_report(10250, None), target="image")
    with pytest.raises(ValueError, match="target must be 'zip' or 'image', got 'layer'"):
        check_limits(_report(1, 1), target="layer")
