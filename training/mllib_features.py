"""Old import path of the title/age stage, kept so MLlib pipelines logged before `training/mllib/` existed still load.

Spark stores a Python stage by its class path (`training.mllib_features.TitleAgeImputerModel` in those models'
metadata) and imports that path when the pipeline is loaded; the stage itself lives in training.mllib.features.
"""

from training.mllib.features import TitleAgeImputer, TitleAgeImputerModel

__all__ = ["TitleAgeImputer", "TitleAgeImputerModel"]
