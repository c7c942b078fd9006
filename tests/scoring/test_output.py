import pandas as pd
import pytest

from common.errors import UserInputError
from scoring.batch.output import StagedOutput


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_writer_that_fails_halfway_leaves_neither_partial_output_nor_a_lost_earlier_one(spark, tmp_path):
    target = tmp_path / "result"
    spark.range(5).write.parquet(str(target))
    staged = StagedOutput(spark, str(target), overwrite=True)

    def fails_after_writing_some(df, path):
        df.limit(2).write.parquet(path)
        raise RuntimeError("executor lost")

    with pytest.raises(RuntimeError, match="executor lost"):
        staged.write(spark.range(100), fails_after_writing_some)
    assert _listing(tmp_path) == ["result"]
    assert sorted(pd.read_parquet(target)["id"]) == [0, 1, 2, 3, 4]


def test_commit_swaps_in_the_new_result(spark, tmp_path):
    target = tmp_path / "result"
    spark.range(5).write.parquet(str(target))
    staged = StagedOutput(spark, str(target), overwrite=True)
    staged.write(spark.range(7), lambda df, path: df.write.parquet(path))
    assert staged.commit() == f"file:{target}"
    assert _listing(tmp_path) == ["result"] and len(pd.read_parquet(target)) == 7


def test_existing_target_needs_overwrite(spark, tmp_path):
    (tmp_path / "result").mkdir()
    with pytest.raises(UserInputError, match="already exists"):
        StagedOutput(spark, str(tmp_path / "result"), overwrite=False)
