"""Build an MLlib Pipeline for a table: index strings, impute and assemble numbers, then the chosen estimator."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.ml import Pipeline
from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier
from pyspark.ml.feature import (
    Imputer,
    IndexToString,
    OneHotEncoder,
    SQLTransformer,
    VectorAssembler,
)
from pyspark.ml.regression import GBTRegressor, LinearRegression, RandomForestRegressor
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from common.columns import quoted
from common.errors import UserInputError
from training.mllib.category_cap import CappedStringIndexer
from training.mllib.column_screen import screen_columns
from training.mllib.features import TitleAgeImputer
from training.mllib.tree_sizes import forest_features, sized_trees
from training.mllib.xgboost_stage import build_xgboost, check_hyperparameters
from training.tasks import CLASSIFICATION, REGRESSION

FEATURES = "features"
LABEL_INDEX = "label_index"  # the label as MLlib wants it: 0.0 .. k-1
PREDICTION_INDEX = "prediction_index"
PREDICTION = "prediction"
TITLE = "title"
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
_MIN_BINS = 32

ESTIMATORS = {
    "random_forest": {CLASSIFICATION: RandomForestClassifier, REGRESSION: RandomForestRegressor},
    "gbt": {CLASSIFICATION: GBTClassifier, REGRESSION: GBTRegressor},
    "logistic_regression": {CLASSIFICATION: LogisticRegression},
    "linear_regression": {REGRESSION: LinearRegression},
    "xgboost": {CLASSIFICATION: "xgboost.spark.SparkXGBClassifier", REGRESSION: "xgboost.spark.SparkXGBRegressor"},
}
_LINEAR = {"logistic_regression", "linear_regression"}
TREE_ESTIMATORS = ("random_forest", "gbt")  # the estimators whose trees a grid can tune


@dataclass(frozen=True)
class MllibSpec:
    label: str
    task: str
    estimator: str = "random_forest"
    num_trees: int = 0  # 0: sized for the data (training.mllib.tree_sizes)
    max_depth: int = 0
    seed: int = 42
    exclude: tuple[str, ...] = ()
    title_from: str | None = None  # a name column: add the title feature and impute `age_column` by title
    age_column: str = "age"
    max_categories: int = 250  # a string feature's most frequent values kept; the rest share one "other" index
    id_like_ratio: float = 0.9  # distinct values / rows at or above which a string column is an identifier
    hyperparams: dict = field(default_factory=dict)  # XGBoost's own, by name (estimator xgboost only)


@dataclass
class FeaturePlan:
    raw_features: list[str]  # the input columns a scorer must provide (the model's signature)
    categorical: list[str] = field(default_factory=list)  # after the title stage
    numeric: list[str] = field(default_factory=list)
    boolean: list[str] = field(default_factory=list)  # cast to 0/1 by a SQL stage, then imputed like numbers
    dropped: dict[str, str] = field(default_factory=dict)  # left out by the data: column -> why
    n_rows: int = 0

    @property
    def imputed(self) -> list[str]:
        """The number columns the Imputer fills: numeric features, and booleans as numbers."""
        return self.numeric + [_as_number(c) for c in self.boolean]


def _as_number(column: str) -> str:
    return f"{column}_number"


# Columns the pipeline's stages add; a feature of the same name would make a stage refuse to run.
_STAGE_OUTPUTS = (FEATURES, LABEL_INDEX, PREDICTION_INDEX, PREDICTION, "probability", "rawPrediction", TITLE)


def plan_features(df: DataFrame, spec: MllibSpec) -> FeaturePlan:
    """Sort the input columns into string and numeric features; any other type is refused, by name."""
    if spec.label not in df.columns:
        raise UserInputError(f"label column {spec.label!r} not found; columns are: {', '.join(df.columns)}")
    missing = [
        c
        for c in (*spec.exclude, *([spec.title_from, spec.age_column] if spec.title_from else []))
        if c not in df.columns
    ]
    if missing:
        raise UserInputError(f"column(s) not found: {', '.join(missing)}; columns are: {', '.join(df.columns)}")
    if spec.hyperparams and spec.estimator != "xgboost":
        raise UserInputError(f"hyperparams are XGBoost's; estimator {spec.estimator!r} takes num_trees / max_depth")
    if spec.estimator == "xgboost" and spec.task != "auto":
        check_hyperparameters(spec.task, spec.hyperparams)
    if not spec.id_like_ratio > 0:
        raise UserInputError(
            f"id_like_ratio must be above 0 (above 1: keep every string column), got {spec.id_like_ratio}"
        )
    if spec.max_categories < 2:
        raise UserInputError(
            f"max_categories must be at least 2 (one kept value and 'other'), got {spec.max_categories}"
        )
    candidates = [c for c in df.columns if c != spec.label and c not in spec.exclude]
    if not candidates:
        raise UserInputError("no feature columns left besides the label")
    _check_dotted_names(candidates, spec)
    # The title stage's columns are used whatever they hold; every other column is screened by its data.
    screened = [c for c in candidates if c not in (spec.title_from, spec.age_column if spec.title_from else None)]
    strings = [c for c in screened if isinstance(df.schema[c].dataType, T.StringType)]
    screen = screen_columns(df, screened, strings, spec.id_like_ratio, spec.max_categories)
    plan = FeaturePlan(raw_features=[c for c in candidates if c not in screen.dropped], n_rows=screen.n_rows)
    plan.dropped = screen.dropped
    if not plan.raw_features:
        raise UserInputError(
            f"no feature columns left after leaving out {screen.describe()} "
            "(id_like_ratio above 1 keeps string columns whatever their values)"
        )
    for column in plan.raw_features:
        data_type = df.schema[column].dataType
        if column == spec.title_from:
            continue  # free text: only its title is a feature
        if isinstance(data_type, T.BooleanType):
            plan.boolean.append(column)
        elif isinstance(data_type, T.StringType):
            plan.categorical.append(column)
        elif isinstance(data_type, _NUMERIC):
            plan.numeric.append(column)
        else:
            raise UserInputError(
                f"feature column {column!r} has unsupported type {data_type.simpleString()}; "
                "supported: numeric, boolean, string"
            )
    if spec.title_from:
        plan.categorical.append(TITLE)
    _check_derived_names(plan, spec)
    return plan


def _check_dotted_names(features: list[str], spec: MllibSpec) -> None:
    """MLlib's stages read a dot in a column name as a struct field."""
    dotted = [c for c in [*features, spec.label] if "." in c]
    if dotted:
        raise UserInputError(
            f"column(s) {', '.join(map(repr, dotted))} have a dot in their name, which Spark ML stages cannot read; "
            "rename them (for example mean.radius -> mean_radius)"
        )


def _check_derived_names(plan: FeaturePlan, spec: MllibSpec) -> None:
    """A feature named like a column a stage adds (the pipeline's own, or another feature's `_index`, ...)."""
    derived = {f"{c}_index" for c in plan.categorical} | {f"{c}_imputed" for c in plan.imputed}
    derived |= {f"{c}_vector" for c in plan.categorical} if spec.estimator in _LINEAR else set()
    derived |= {_as_number(c) for c in plan.boolean}
    added = {*_STAGE_OUTPUTS, *derived} - ({TITLE} if not spec.title_from else set())
    features = plan.raw_features
    taken = [c for c in features if c in added]
    if taken:
        raise UserInputError(
            f"feature column(s) {', '.join(map(repr, taken))} have the name of a column the MLlib pipeline adds "
            f"({', '.join(_STAGE_OUTPUTS)}, <column>_index / _vector / _imputed / _number); rename or exclude them"
        )


def build_pipeline(plan: FeaturePlan, spec: MllibSpec, label_labels: list[str] | None, max_categories: int) -> Pipeline:
    """The unfitted pipeline. `label_labels`: the classes of a string label (None when the label is numeric)."""
    stages = []
    if spec.title_from:
        stages.append(TitleAgeImputer(nameCol=spec.title_from, ageCol=spec.age_column, titleCol=TITLE))
    assembled = []
    if plan.categorical:
        indexed = [f"{c}_index" for c in plan.categorical]
        # The most frequent values keep an index each; rare, unseen and null values share the next one.
        stages += [
            CappedStringIndexer(inputCol=c, outputCol=out, maxCategories=spec.max_categories)
            for c, out in zip(plan.categorical, indexed, strict=True)
        ]
        if spec.estimator in _LINEAR:
            encoded = [f"{c}_vector" for c in plan.categorical]
            stages.append(OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"))
            assembled += encoded
        else:
            assembled += indexed
    if plan.boolean:
        # Booleans as 0.0/1.0 (a saved SQL stage, so scoring does the same): the indexer and imputer take no booleans.
        casts = ", ".join(f"CAST({quoted(c)} AS DOUBLE) AS {quoted(_as_number(c))}" for c in plan.boolean)
        stages.append(SQLTransformer(statement=f"SELECT *, {casts} FROM __THIS__"))
    if plan.imputed:
        imputed = [f"{c}_imputed" for c in plan.imputed]
        stages.append(Imputer(inputCols=plan.imputed, outputCols=imputed, strategy="mean"))
        assembled += imputed
    stages.append(VectorAssembler(inputCols=assembled, outputCol=FEATURES, handleInvalid="keep"))
    categories = min(max_categories, spec.max_categories) + 1  # + the "other" index
    estimator = build_estimator(spec, label_labels is not None, categories, plan.n_rows, len(assembled))
    stages.append(estimator)
    if label_labels is not None:
        stages.append(IndexToString(inputCol=PREDICTION_INDEX, outputCol=PREDICTION, labels=label_labels))
    return Pipeline(stages=stages)


def build_estimator(spec: MllibSpec, string_label: bool, max_categories: int, n_rows: int, n_features: int):
    by_task = ESTIMATORS.get(spec.estimator)
    if by_task is None:
        raise UserInputError(f"unknown estimator {spec.estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    if spec.task not in by_task:
        raise UserInputError(f"estimator {spec.estimator!r} does not do {spec.task}; it does: {', '.join(by_task)}")
    label_col = LABEL_INDEX if spec.task == CLASSIFICATION else spec.label
    if spec.estimator == "xgboost":
        # XGBoost's own defaults unless the user sizes it; the label is LABEL_INDEX, 0..k-1, as it requires.
        sizes = {"n_estimators": spec.num_trees} if spec.num_trees > 0 else {}
        sizes |= {"max_depth": spec.max_depth} if spec.max_depth > 0 else {}
        prediction = PREDICTION_INDEX if string_label else PREDICTION
        return build_xgboost(spec.task, sizes | spec.hyperparams, spec.seed, label_col, FEATURES, prediction)
    cls = by_task[spec.task]
    estimator = cls(
        featuresCol=FEATURES, labelCol=label_col, predictionCol=PREDICTION_INDEX if string_label else PREDICTION
    )
    if spec.estimator in TREE_ESTIMATORS:
        # Indexed categories stay categorical for trees; every category needs a bin of its own.
        num_trees, max_depth = sized_trees(spec.estimator, n_rows, spec.num_trees, spec.max_depth)
        estimator.setMaxDepth(max_depth).setSeed(spec.seed).setMaxBins(max(_MIN_BINS, max_categories))
        if spec.estimator == "random_forest":
            estimator.setNumTrees(num_trees).setFeatureSubsetStrategy(forest_features(spec.task, n_features))
        else:
            estimator.setMaxIter(num_trees)
    return estimator
