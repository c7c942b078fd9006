"""A persistable feature stage for passenger data: the title from the name, and missing ages imputed by the mean
age of that title.

The means are learned by `fit` on the training data and stored in the model, so scoring never looks at the ages
of the rows it scores (a common tutorial recomputes them from whatever data was transformed, which leaks scoring
data into features). The transform is plain Spark SQL, so it runs on executors without Python.
"""

from __future__ import annotations

import json

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UNKNOWN_TITLE = "Unknown"
# "Allen, Miss Elisabeth Walton" -> "Miss"; "Braund, Mr. Owen Harris" -> "Mr"
_TITLE_PATTERN = r"^[^,]*,\s*([A-Za-z]+)"


class _TitleAgeParams(Params):
    nameCol = Param(Params._dummy(), "nameCol", "column with the full name", TypeConverters.toString)
    ageCol = Param(Params._dummy(), "ageCol", "column with the age to impute", TypeConverters.toString)
    titleCol = Param(Params._dummy(), "titleCol", "output column for the title", TypeConverters.toString)

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(nameCol="name", ageCol="age", titleCol="title")

    def title(self) -> Column:
        extracted = F.regexp_extract(F.col(self.getOrDefault(self.nameCol)), _TITLE_PATTERN, 1)
        return F.when(extracted == "", F.lit(UNKNOWN_TITLE)).otherwise(extracted)


class TitleAgeImputer(Estimator, _TitleAgeParams, DefaultParamsReadable, DefaultParamsWritable):
    """Learns the mean age per title (and overall) from the data it is fitted on."""

    @keyword_only
    def __init__(self, *, nameCol: str = "name", ageCol: str = "age", titleCol: str = "title") -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> TitleAgeImputerModel:
        age = F.col(self.getOrDefault(self.ageCol)).cast("double")
        rows = dataset.groupBy(self.title().alias("title")).agg(F.avg(age).alias("mean_age")).collect()
        means = {r["title"]: r["mean_age"] for r in rows if r["mean_age"] is not None}
        overall = dataset.agg(F.avg(age)).first()[0]
        model = TitleAgeImputerModel(titleMeans=json.dumps(means, sort_keys=True), overallMean=float(overall or 0.0))
        return self._copyValues(model)


class TitleAgeImputerModel(Model, _TitleAgeParams, DefaultParamsReadable, DefaultParamsWritable):
    """Adds the title column and fills missing ages from the means learned at fit time (overall mean for a title
    unseen in training)."""

    titleMeans = Param(Params._dummy(), "titleMeans", "JSON object: title -> mean age", TypeConverters.toString)
    overallMean = Param(Params._dummy(), "overallMean", "mean age over the training data", TypeConverters.toFloat)

    @keyword_only
    def __init__(
        self,
        *,
        nameCol: str = "name",
        ageCol: str = "age",
        titleCol: str = "title",
        titleMeans: str = "{}",
        overallMean: float = 0.0,
    ) -> None:
        super().__init__()
        self._setDefault(titleMeans="{}", overallMean=0.0)
        self._set(**self._input_kwargs)

    def means(self) -> dict[str, float]:
        return json.loads(self.getOrDefault(self.titleMeans))

    def _transform(self, dataset: DataFrame) -> DataFrame:
        age_col = self.getOrDefault(self.ageCol)
        title = self.title()
        pairs = [part for title_name, mean in sorted(self.means().items()) for part in (F.lit(title_name), F.lit(mean))]
        learned = F.create_map(*pairs)[title] if pairs else F.lit(None)
        fallback = F.lit(self.getOrDefault(self.overallMean))
        return dataset.withColumn(self.getOrDefault(self.titleCol), title).withColumn(
            age_col, F.coalesce(F.col(age_col).cast("double"), learned, fallback)
        )
