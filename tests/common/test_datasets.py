import pandas as pd
import pytest

from common.datasets import BUNDLED, DEFAULT_LABEL, load_table
from common.errors import UserInputError


@pytest.mark.parametrize(
    ("name", "rows", "features"), [("breast_cancer", 569, 30), ("wine", 178, 13), ("diabetes", 442, 10)]
)
def test_bundled_sets_load_with_snake_case_columns_and_a_target(name, rows, features):
    table = load_table(name)
    assert table.frame.shape == (rows, features + 1)
    assert DEFAULT_LABEL in table.frame.columns
    assert all(c == c.lower() and " " not in c for c in table.frame.columns)
    assert table.bundled and table.source.startswith("sklearn.datasets.")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_paths_load_csv_and_parquet(tmp_path, suffix):
    frame = pd.DataFrame({"a": [1.0, 2.0], "target": [0, 1]})
    path = tmp_path / f"data{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    table = load_table(str(path))
    pd.testing.assert_frame_equal(table.frame, frame)
    assert table.source == str(path.resolve()) and table.name == "data"


def test_unknown_data_lists_the_bundled_sets(tmp_path):
    with pytest.raises(
        UserInputError,
        match="neither an existing path nor a bundled data set; bundled: " + ", ".join(sorted(BUNDLED)),
    ):
        load_table(str(tmp_path / "missing.parquet"))


def test_empty_file_and_unsupported_type_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("a,target\n")
    with pytest.raises(UserInputError, match="has no rows"):
        load_table(str(empty))
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(UserInputError, match="unsupported file type '.xlsx'"):
        load_table(str(odd))


def test_mlflow_dataset_has_digest_source_and_targets(tmp_path):
    bundled = load_table("breast_cancer").to_mlflow_dataset(targets=DEFAULT_LABEL)
    assert bundled.source.to_dict() == {"tags": {"loader": "sklearn.datasets.load_breast_cancer"}}
    assert bundled.targets == DEFAULT_LABEL and len(bundled.digest) == 8
    path = tmp_path / "d.parquet"
    pd.DataFrame({"a": [1.0], "target": [1]}).to_parquet(path)
    assert load_table(str(path)).to_mlflow_dataset().source.to_dict()["uri"] == str(path.resolve())
