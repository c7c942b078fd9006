"""What a person reads: per version, a PNG of every column's drift from the baseline over the windows (Jensen-
Shannon distance, the one statistic both kinds of column share, with its threshold) and a PNG of the label metrics
over the windows; and one HTML page holding them (base64, inline CSS) with the verdicts, which opens
from a file without a server. Drawn from the tables' whole history of the model, not only this run's windows."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # jobs run headless
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from monitoring.judgement import BASELINE, TABLE  # noqa: E402
from monitoring.tables import DRIFT_TABLE, read_table  # noqa: E402

_STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f2f2f2}.drift{color:#b00020}
.ok{color:#1b7f3b}img{max-width:100%;border:1px solid #eee}"""


def history(spark: SparkSession, output: str, model_name: str) -> pd.DataFrame:
    """The whole table's comparisons with the baseline over every window so far: each column's Jensen-Shannon
    distance and verdict, and the label metrics (column TABLE). Aggregates only, a few rows per window."""
    drift = read_table(spark, output, DRIFT_TABLE, model_name)
    if drift is None:
        return pd.DataFrame()
    wanted = F.col("statistic").isin("js_distance", "drift") | (F.col("column_name") == TABLE)
    rows = drift.where(F.col("slice_key").isNull() & (F.col("comparison") == BASELINE) & wanted)
    keep = ["window_key", "window_start", "model_version", "column_name", "statistic", "value", "threshold", "drifted"]
    return rows.select(*keep).toPandas()


def drift_png(drift: pd.DataFrame, version: str, threshold: float, path: Path) -> Path | None:
    rows = drift[(drift.model_version == version) & (drift.statistic == "js_distance") & (drift.column_name != TABLE)]
    if rows.empty:
        return None
    fig, ax = _lines(rows, "column_name")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
    ax.set_ylabel("Jensen-Shannon distance to the baseline")
    ax.set_title(f"Drift of each column over the windows (version {version})")
    ax.legend(fontsize="small", ncol=2 if rows.column_name.nunique() > 8 else 1, loc="upper left")
    return _save(fig, path)


def metrics_png(drift: pd.DataFrame, version: str, path: Path) -> Path | None:
    rows = drift[(drift.model_version == version) & (drift.column_name == TABLE)]
    if rows.empty:
        return None
    fig, ax = _lines(rows, "statistic")
    ax.set_title(f"Label metrics over the windows (version {version})")
    ax.legend(fontsize="small")
    return _save(fig, path)


def html_report(
    model_name: str, statuses: dict, problems: dict[str, str], drift: pd.DataFrame, pngs: list[Path]
) -> str:
    status_rows = "".join(
        f"<tr><td>{html.escape(v)}</td><td class='{'ok' if s.status == 'ok' else 'drift'}'>{html.escape(s.status)}"
        f"</td><td>{html.escape(s.window or '-')}</td><td>{html.escape(s.retraining.describe())}</td></tr>"
        for v, s in statuses.items()
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Monitoring: {html.escape(model_name)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>Monitoring: {html.escape(model_name)}</h1>",
        "<table><tr><th>version</th><th>status</th><th>last window judged</th><th>retraining</th></tr>",
        status_rows,
        "</table>",
    ]
    if problems:
        parts.append("<h2>Columns not compared</h2><table><tr><th>column</th><th>why</th></tr>")
        parts += [f"<tr><td>{html.escape(c)}</td><td>{html.escape(w)}</td></tr>" for c, w in sorted(problems.items())]
        parts.append("</table>")
    flagged = (
        drift[((drift.statistic == "drift") | (drift.column_name == TABLE)) & drift.drifted] if len(drift) else drift
    )
    if not flagged.empty:
        parts.append(
            "<h2>Drift and degradation against the baseline</h2><table><tr><th>window</th><th>version</th>"
            "<th>drifted column or degraded metric</th></tr>"
        )
        for _, r in flagged.sort_values(["window_key", "model_version", "column_name"]).iterrows():
            what = r.statistic if r.column_name == TABLE else r.column_name
            parts.append(
                f"<tr><td>{r.window_start}</td><td>{html.escape(r.model_version)}</td>"
                f"<td class='drift'>{html.escape(what)}</td></tr>"
            )
        parts.append("</table>")
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(png.stem.replace('_', ' '))}</h2><img src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _lines(rows: pd.DataFrame, by: str):
    """One line per value of `by` over the windows."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, points in rows.groupby(by):
        points = points.sort_values("window_key")
        ax.plot(_x(points), points["value"], marker="o", markersize=3, label=name)
    return fig, ax


def _x(points: pd.DataFrame):
    return points["window_start"] if points["window_start"].notna().all() else points["window_key"]


def _save(fig, path: Path) -> Path:
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
