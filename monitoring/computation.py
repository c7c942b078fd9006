"""The windows a run computes: which are new or changed since the state table last saw them, their profiles in one
aggregation, each group judged against its version's baseline and its previous window, and the rows of the three
tables. A window whose rows and labels are as they were when it was computed is not computed again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from monitoring.aggregation import GroupProfile, ProfiledColumns, profile_windows
from monitoring.baselines import Baseline
from monitoring.groups import GroupKey
from monitoring.inputs import WindowCounts
from monitoring.judgement import Verdict, judge_group
from monitoring.label_metrics import MetricSpec
from monitoring.tables import DRIFT_TABLE, PROFILE_TABLE, STATE_TABLE, profile_json, read_profiles
from monitoring.windows import WINDOW_KEY, WindowSpec, rows_of_windows


@dataclass(frozen=True)
class Setup:
    """What every window of one run is judged with."""

    model_name: str
    spec: WindowSpec
    time_column: str
    slice_column: str | None
    baselines: dict[str, Baseline]
    columns: ProfiledColumns
    columns_seen: dict[str, str]  # column -> problem ('' when none)
    metric_spec: MetricSpec | None
    thresholds: dict[str, float]
    min_rows: int
    run_id: str


@dataclass
class Computed:
    rows: dict[str, list[dict]] = field(default_factory=lambda: {PROFILE_TABLE: [], DRIFT_TABLE: [], STATE_TABLE: []})
    verdicts: dict[GroupKey, Verdict] = field(default_factory=dict)
    profiles: dict[GroupKey, GroupProfile] = field(default_factory=dict)


def state_digest(counts: WindowCounts, slice_column: str | None) -> str:
    """What a window was computed from: its rows and labels, and the slice column its slices were cut by."""
    return f"{counts.digest}|slice={slice_column or ''}"


def pending_windows(counts: list[WindowCounts], state: list[dict], slice_column: str | None) -> list[int]:
    """Windows not in the state, or whose (version, digest) pairs differ from the state's."""
    now: dict[int, set] = {}
    for c in counts:
        now.setdefault(c.window, set()).add((c.version, state_digest(c, slice_column)))
    before: dict[int, set] = {}
    for row in state:
        if row["slice_value"] is None:
            before.setdefault(row["window_key"], set()).add((row["model_version"], row["digest"]))
    return sorted(w for w, pairs in now.items() if before.get(w) != pairs)


def compute(
    spark: SparkSession,
    df: DataFrame,
    output: str,
    setup: Setup,
    pending: list[int],
    counts: list[WindowCounts],
    state: list[dict],
) -> Computed:
    done = Computed()
    if not pending:
        return done
    rows = df.where(F.col(WINDOW_KEY).isin(pending))
    narrowed = rows_of_windows(df, setup.spec, setup.time_column, pending)
    profiles = profile_windows(
        rows if narrowed is None else rows.where(narrowed), setup.columns, setup.baselines, setup.metric_spec
    )
    known: dict[tuple[str, str | None], set[int]] = {}
    for row in state:
        if row["window_key"] not in pending:
            known.setdefault((row["model_version"], row["slice_value"]), set()).add(row["window_key"])
    for key in profiles:
        known.setdefault((key.version, key.slice_value), set()).add(key.window)
    previous_key = {
        key: max((w for w in known[(key.version, key.slice_value)] if w < key.window), default=None) for key in profiles
    }
    stored = read_profiles(
        spark, output, setup.model_name, {w for w in previous_key.values() if w not in pending} - {None}
    )
    by_window = {(c.window, c.version): c for c in counts}
    computed_at = datetime.now(UTC)
    for key in sorted(profiles, key=lambda k: (k.window, k.version, k.slice_value or "")):
        profile = profiles[key]
        before = previous_key[key]
        previous = None
        if before is not None:
            found = profiles.get(GroupKey(before, key.version, key.slice_value)) or stored.get(
                GroupKey(before, key.version, key.slice_value)
            )
            previous = (before, found) if found is not None else None
        profile_rows, drift_rows, verdict = judge_group(
            profile, setup.baselines[key.version], previous, setup.columns_seen, setup.thresholds, setup.min_rows
        )
        window_counts = by_window[(key.window, key.version)]
        start, end = setup.spec.bounds(key.window, window_counts.first, window_counts.last)
        context = {
            "window_start": start,
            "window_end": end,
            "granularity": setup.spec.text,
            "model_version": key.version,
            "slice_key": setup.slice_column if key.slice_value is not None else None,
            "slice_value": key.slice_value,
            "run_id": setup.run_id,
            "computed_at": computed_at,
            "model_name": setup.model_name,
            "window_key": key.window,
        }
        done.rows[PROFILE_TABLE] += [context | r for r in profile_rows]
        done.rows[DRIFT_TABLE] += [context | r for r in drift_rows]
        done.rows[STATE_TABLE].append(
            context
            | {
                "digest": state_digest(window_counts, setup.slice_column),
                "verdict": verdict.text(),
                "profile": profile_json(profile),
            }
        )
        done.verdicts[key] = verdict
        done.profiles[key] = profile
    return done
