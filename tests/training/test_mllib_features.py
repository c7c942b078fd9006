import pytest
from pyspark.ml import Pipeline, PipelineModel

from training.mllib.features import UNKNOWN_TITLE, TitleAgeImputer, TitleAgeImputerModel

TRAINING = [
    ("Allen, Miss Elisabeth", 20.0),
    ("Baker, Miss Anne", None),
    ("Cole, Miss Mary", 30.0),
    ("Dodd, Mr. John", 40.0),
    ("Eyre, Mr Tom", 60.0),
    ("Ford, Mrs Jane", None),  # no Mrs age in training: falls back to the overall mean
]
OVERALL = (20 + 30 + 40 + 60) / 4


@pytest.fixture
def training(spark):
    return spark.createDataFrame(TRAINING, "name string, age double")


def test_fit_learns_mean_age_per_title_from_the_training_data(training):
    model = TitleAgeImputer(nameCol="name", ageCol="age").fit(training)
    assert model.means() == {"Miss": 25.0, "Mr": 50.0}
    assert model.getOrDefault(model.overallMean) == OVERALL


def test_scoring_fills_from_learned_means_never_from_the_scored_rows(spark, training):
    model = TitleAgeImputer().fit(training)
    # Were means recomputed from these rows, the missing Miss would get 90 and the Mr 5.
    scoring = spark.createDataFrame(
        [
            (1, "Gray, Miss Ida", 90.0),
            (2, "Hall, Miss Amy", None),
            (3, "Ives, Mr Sam", None),
            (4, "Judd, Mr Al", 5.0),
            (5, "Kent, Rev Paul", None),
            (6, "no comma at all", None),
            (7, "Ford, Mrs Jane", None),
        ],
        "id int, name string, age double",
    )
    rows = {r["id"]: (r["title"], r["age"]) for r in model.transform(scoring.repartition(3)).collect()}
    assert rows == {
        1: ("Miss", 90.0),
        2: ("Miss", 25.0),
        3: ("Mr", 50.0),
        4: ("Mr", 5.0),
        5: ("Rev", OVERALL),  # a title unseen in training
        6: (UNKNOWN_TITLE, OVERALL),
        7: ("Mrs", OVERALL),
    }


def test_the_stage_saves_and_loads_alone_and_inside_a_pipeline(spark, training, tmp_path):
    model = TitleAgeImputer(nameCol="name", ageCol="age", titleCol="honorific").fit(training)
    model.write().save(str(tmp_path / "stage"))
    loaded = TitleAgeImputerModel.load(str(tmp_path / "stage"))
    assert loaded.means() == model.means() and loaded.getOrDefault(loaded.titleCol) == "honorific"

    pipeline_model = Pipeline(stages=[TitleAgeImputer()]).fit(training)
    pipeline_model.write().save(str(tmp_path / "pipeline"))
    reloaded = PipelineModel.load(str(tmp_path / "pipeline"))
    assert isinstance(reloaded.stages[0], TitleAgeImputerModel)
    assert (
        reloaded.transform(training).orderBy("name").collect()
        == model.transform(training).withColumnRenamed("honorific", "title").orderBy("name").collect()
    )
