"""What a browser that has not chosen otherwise sees in the project's MLflow UI: the Model training view and, in
every runs table, the held-out metrics as columns.

MLflow's UI keeps both choices in the browser's localStorage and, in 3.17 and 3.18, goes by them alone: its
GenAI / Model training switch (GenAI until the user picks) decides where an experiment opens, whatever the
experiment's `mlflow.experimentKind` tag says, and a runs table starts with no metric columns. The script below
runs in the UI's page before MLflow's own code and answers the UI's reads of those two keys with the project's
defaults while the browser holds no value of its own. MLflow stores a runs table's state as soon as it shows it,
and the switch when the user flips it: from then on the browser's own values are read, so a user's choice wins.
"""

from __future__ import annotations

import json
import logging

from training.evaluation import GREATER_IS_BETTER

_logger = logging.getLogger(__name__)

# MLflow's names for its localStorage entries (3.17): the switch (`useLocalStorage` appends `_v<version>`), and a
# runs table's view state per set of experiment ids (LocalStorageUtils, component "ExperimentPage").
WORKFLOW_TYPE_KEY = "mlflow.workflowType_v1"
MODEL_TRAINING = "machine_learning"
RUNS_TABLE_KEY_PATTERN = r"^MLflowLocalStorage-[^-]+-ExperimentPage-\[.*\]-ReactComponentState$"

# Every metric a training job logs on its held-out split, whatever the task; the table shows those a run has.
HELD_OUT_METRICS = tuple(sorted(GREATER_IS_BETTER))

_SCRIPT = """<script>/* spark-model-lifecycle: the UI's defaults for a browser that has not chosen otherwise */
(function () {
  var defaults = %(defaults)s, runsTable = new RegExp(%(runs_table)s), runsTableState = %(runs_table_state)s;
  var getItem = Storage.prototype.getItem;
  Storage.prototype.getItem = function (key) {
    var value = getItem.call(this, key);
    if (value !== null || this !== window.localStorage) return value;
    if (Object.prototype.hasOwnProperty.call(defaults, key)) return defaults[key];
    return runsTable.test(key) ? runsTableState : null;
  };
})();
</script>"""


def metric_column(name: str) -> str:
    """A metric's column in MLflow's runs table, as its view state names it."""
    return f"metrics.`{name}`"


def defaults_script() -> str:
    runs_table_state = {"selectedColumns": [metric_column(name) for name in HELD_OUT_METRICS]}
    return _SCRIPT % {
        "defaults": json.dumps({WORKFLOW_TYPE_KEY: json.dumps(MODEL_TRAINING)}),
        "runs_table": json.dumps(RUNS_TABLE_KEY_PATTERN),
        "runs_table_state": json.dumps(json.dumps(runs_table_state)),
    }


def with_defaults(index_html: str) -> str:
    """MLflow's page with the script at the end of its head: an inline script runs as it is read, before the UI's
    own (deferred) code. A page without a head (an MLflow that changed its page) is served as it is, with a
    warning, rather than not at all."""
    at = index_html.find("</head>")
    if at < 0:
        _logger.warning("MLflow's UI page has no </head>: served without the project's defaults")
        return index_html
    return index_html[:at] + defaults_script() + index_html[at:]
