import pytest

from common.errors import UserInputError
from registry.gate import DEFAULT_THRESHOLDS, judge, parse_thresholds


def test_a_candidate_within_tolerance_of_the_champion_and_above_the_minimum_passes():
    result = judge(
        {"accuracy": 0.905, "roc_auc": 0.95}, {"accuracy": 0.91, "roc_auc": 0.95}, DEFAULT_THRESHOLDS["classification"]
    )
    assert result.passed and result.failures == []


def test_worse_than_the_champion_beyond_the_tolerance_fails_and_says_by_how_much():
    result = judge(
        {"accuracy": 0.89, "roc_auc": 0.95}, {"accuracy": 0.91, "roc_auc": 0.95}, DEFAULT_THRESHOLDS["classification"]
    )
    assert not result.passed
    assert result.failures == [
        "accuracy 0.8900 is worse than the champion's 0.9100 by 0.0200, more than the tolerance 0.0100"
    ]


def test_absolute_thresholds_apply_without_a_champion():
    rules = {"accuracy": {"min": 0.95}, "log_loss": {"max": 0.2}}
    result = judge({"accuracy": 0.9, "log_loss": 0.3}, None, rules)
    assert not result.passed
    assert result.failures == ["accuracy 0.9000 is below the minimum 0.95", "log_loss 0.3000 is above the maximum 0.2"]
    assert judge({"accuracy": 0.96, "log_loss": 0.1}, None, rules).passed


def test_relative_tolerance_for_lower_is_better_metrics():
    rules = DEFAULT_THRESHOLDS["regression"]
    assert judge({"r2": 0.5, "rmse": 104.0}, {"r2": 0.5, "rmse": 100.0}, rules).passed  # 4 % worse, 5 % allowed
    failed = judge({"r2": 0.5, "rmse": 106.0}, {"r2": 0.5, "rmse": 100.0}, rules)
    assert not failed.passed and failed.failures[0].startswith("rmse 106.0000 is worse than the champion's 100.0000")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"accuracy": 0.9}', "must map metrics to rules"),
        ('{"precision": {"min": 0.9}}', "unknown metric 'precision'"),
        ('{"accuracy": {"at_least": 0.9}}', "unknown rule"),
    ],
)
def test_bad_thresholds_are_named(text, message):
    with pytest.raises(UserInputError, match=message):
        parse_thresholds(text, "classification")


def test_a_metric_the_data_cannot_give_is_not_judged():
    from registry.gate import DEFAULT_THRESHOLDS, judge

    # ROC AUC of a test split that holds one class is NaN: the other metrics decide.
    result = judge({"accuracy": 1.0, "roc_auc": float("nan")}, None, DEFAULT_THRESHOLDS["classification"])
    assert result.passed and "roc_auc" in result.table() and "not judged" in result.table()
    failed = judge({"accuracy": 0.2, "roc_auc": float("nan")}, None, DEFAULT_THRESHOLDS["classification"])
    assert not failed.passed and failed.failures == ["accuracy 0.2000 is below the minimum 0.5"]
