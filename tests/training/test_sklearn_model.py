import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from common.errors import UserInputError
from training.sklearn.model import pinned_requirements, skops_trusted_types


def test_trusted_types_are_exactly_what_the_model_needs():
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1]
    assert skops_trusted_types(RandomForestClassifier(n_estimators=2).fit(X, y)) == ["sklearn.tree._tree.Tree"]
    assert skops_trusted_types(LogisticRegression().fit(X, y)) == []


class _Custom:
    """A type outside scikit-learn and numpy: skops cannot load it safely."""


def test_a_model_holding_foreign_types_is_refused_not_pickled():
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    model.extra = _Custom()
    with pytest.raises(UserInputError, match="types skops cannot load safely: .*_Custom.*pickle is not used"):
        skops_trusted_types(model)


def test_requirements_are_pinned_to_installed_versions():
    requirements = dict(r.split("==") for r in pinned_requirements())
    assert set(requirements) == {"mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy"}
    assert all(v[0].isdigit() for v in requirements.values())
