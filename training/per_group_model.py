"""Old import path of the per-group routing model, kept so per-group models logged before `training/per_group/`
existed still load.

cloudpickle stores the model's class by reference (`training.per_group_model.PerGroupModel` in those models'
python_model.pkl) and imports that path when the model is loaded; the class itself lives in training.per_group.model.
"""

from training.per_group.model import PerGroupModel

__all__ = ["PerGroupModel"]
