"""The team stack's MLflow UI in a real browser after the quickstart: Debian's Chromium, headless, driven by
Playwright (which never downloads a browser of its own here), each test in a new browser context (a profile that
has never been there). It logs in with HTTP Basic credentials at the address `make ui` gives, clicks the
experiment, and checks what a user sees: the training runs with their held-out metrics as columns, as the tracking
store holds them (MLflow 3.17 alone would open the GenAI overview, with no metric columns), two runs compared, the
registered model's alias and stage, and a user's own choice of the GenAI view kept.

Every step leaves a screenshot in the test's tmp_path; `UPDATE_README_SCREENSHOT=1` also copies the runs page to
docs/team-mode-ui.png."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from common.tracking import EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT_KIND, training_runs_url
from lifecycle.team import system_packages
from lifecycle.team.tracking_server import ADMIN_USER
from lifecycle.ui.browser_defaults import HELD_OUT_METRICS
from tests.helpers import REPO
from tests.team.conftest import QUICKSTART_EXPERIMENT, QUICKSTART_MODEL, team_env

CHROMIUM = Path("/usr/bin/chromium")
README_SCREENSHOT = REPO / "docs" / "team-mode-ui.png"
VIEWPORT = {"width": 1400, "height": 900}
WAIT_MS = 60_000  # the first page of a fresh browser loads the UI's whole bundle: over 20 s on a busy 2-core machine
TRAINING_METRICS = ("accuracy", "f1", "log_loss", "roc_auc")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if not system_packages.can_install():
            pytest.skip(f"Chromium is not installed at {CHROMIUM} and this user cannot install it: "
                        "install the Debian package `chromium`")  # fmt: skip
        system_packages.install_debian_package("chromium")
    return CHROMIUM


def test_the_server_asks_a_browser_for_credentials(team):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{team.server.url}/", timeout=30)
    assert refused.value.code == 401
    assert refused.value.headers.get("WWW-Authenticate", "").lower().startswith("basic")


def test_make_ui_on_the_team_server_gives_its_address_and_the_training_runs_link(
    team, quickstart_on_team, admin_client
):
    """In team mode the server runs already: `python -m lifecycle.ui` starts nothing, it says where to look."""
    experiment = admin_client.get_experiment_by_name(QUICKSTART_EXPERIMENT)
    links = _make_ui_links(team)
    assert links == {
        "MLflow UI": team.server.url,
        "training runs": training_runs_url(team.server.url, experiment.experiment_id),
    }


def test_the_ui_shows_the_quickstart_training_runs_their_comparison_and_the_registered_model(
    team, quickstart_on_team, admin_client, chromium, tmp_path
):
    experiment = admin_client.get_experiment_by_name(QUICKSTART_EXPERIMENT)
    assert experiment.tags.get(EXPERIMENT_KIND_TAG) == TRAINING_EXPERIMENT_KIND
    runs = admin_client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    training = next(r for r in children if "accuracy" in r.data.metrics)
    scoring = next(r for r in children if r.info.run_name.startswith("score"))
    assert len(children) == len(runs) - 1, [r.info.run_name for r in runs]
    assert set(training.data.metrics) & set(HELD_OUT_METRICS) == set(TRAINING_METRICS)

    password = team.env()["MLFLOW_TRACKING_PASSWORD"]
    screenshots = Screenshots(tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            page = _logged_in_page(browser, password)
            page.set_default_timeout(WAIT_MS)

            # 1. Logged in at the server's root: the UI names the user.
            page.goto(f"{team.server.url}/", wait_until="load")
            expect(page.get_by_role("button", name=f"Account menu for {ADMIN_USER}")).to_contain_text(ADMIN_USER)
            _close_assistant(page)
            screenshots.take(page, "1-logged-in")

            # 2. The experiment, clicked there, opens on its training runs (not the GenAI overview), the held-out
            # metrics as columns without choosing any, and their values once the quickstart's run is expanded.
            page.get_by_role("link", name=QUICKSTART_EXPERIMENT, exact=True).click()
            expect(page.get_by_role("link", name=parent.info.run_name, exact=True)).to_be_visible()
            expect(page).to_have_url(re.compile(rf"/experiments/{experiment.experiment_id}/runs\b"))
            _expect_model_training_view(page)
            _expect_columns(page, shown=TRAINING_METRICS, hidden=("Dataset", "Source", "Models"))
            _expand(page, parent.info.run_name, first_child=training.info.run_name)
            for run in runs:
                expect(page.get_by_role("link", name=run.info.run_name, exact=True).first).to_be_visible()
            for metric in TRAINING_METRICS:
                expect(_metric_cell(page, training.info.run_name, metric)).to_have_text(
                    as_the_table_shows(training.data.metrics[metric])
                )
            _widen_column(page, "Run Name", 80)
            for metric in TRAINING_METRICS:
                _widen_column(page, metric, 40)
            runs_page = screenshots.take(page, "2-training-runs")
            if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
                README_SCREENSHOT.parent.mkdir(exist_ok=True)
                shutil.copyfile(runs_page, README_SCREENSHOT)
                print(f"updated {README_SCREENSHOT}")

            # 3. Two runs selected and compared.
            for run in (training, scoring):
                row = page.get_by_role("row").filter(has_text=run.info.run_name)
                row.get_by_role("checkbox", name=re.compile("toggle row selection")).check()
            page.get_by_role("button", name="Compare", exact=True).click()
            expect(page.get_by_role("heading", name="Comparing 2 Runs from 1 Experiment")).to_be_visible()
            for run in (training, scoring):
                expect(page.get_by_text(run.info.run_name, exact=True)).to_be_visible()
            for section in ("Visualizations", "Parameters"):  # folded, so that the metrics show under the runs
                page.get_by_role("button", name=section, exact=True).click()
            expect(page.get_by_role("link", name="accuracy", exact=True)).to_be_in_viewport()
            accuracy = as_the_comparison_shows(training.data.metrics["accuracy"])
            expect(page.get_by_text(accuracy, exact=True)).to_be_visible()
            screenshots.take(page, "3-comparison")

            # 4. The registered model: the version holding the `production` alias, and its stage.
            version = admin_client.get_model_version_by_alias(QUICKSTART_MODEL, "production")
            assert version.current_stage == "Production"
            page.goto(f"{team.server.url}/#/models/{QUICKSTART_MODEL}", wait_until="load")
            row = _version_row(page, version.version)
            alias = row.get_by_role("status", name="production", exact=True)
            expect(alias).to_have_text(re.compile(r"^@\s*production$"))
            _close_assistant(page)
            screenshots.take(page, "4-model-alias")
            # The new registry UI shows aliases only; stages are in the one it replaces.
            page.get_by_role("switch", name="New model registry UI").click()
            page.get_by_role("dialog").get_by_role("button", name="Disable").click()
            expect(page.get_by_role("columnheader", name="Stage")).to_be_visible()
            expect(_version_row(page, version.version).get_by_role("status")).to_have_text("Production")
            screenshots.take(page, "5-model-stage")

            # 6. A user's own choice wins over the defaults: switched to GenAI, the experiment opens there from the
            # root from then on; the project's link still opens the training runs.
            page.goto(f"{team.server.url}/", wait_until="load")
            page.get_by_role("button", name="GenAI", exact=True).click()
            page.get_by_role("link", name=QUICKSTART_EXPERIMENT, exact=True).click()
            expect(page).to_have_url(re.compile(rf"/experiments/{experiment.experiment_id}/overview\b"))
            page.goto(training_runs_url(team.server.url, experiment.experiment_id), wait_until="load")
            expect(page.get_by_role("link", name=parent.info.run_name, exact=True)).to_be_visible()
            _expect_model_training_view(page)
            screenshots.take(page, "6-genai-chosen-link-opens-runs")
        finally:
            browser.close()


def _make_ui_links(team) -> dict[str, str]:
    """`python -m lifecycle.ui` as a user runs it after `source .team/env`: its printed links by label."""
    env = team_env(team, MLFLOW_EXPERIMENT_NAME=QUICKSTART_EXPERIMENT)
    command = [sys.executable, "-m", "lifecycle.ui", "--no-browser"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in done.stdout.splitlines() if line.strip())


class Screenshots:
    def __init__(self, directory: Path):
        self.directory = directory

    def take(self, page: Page, name: str) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path


def as_the_table_shows(value: float) -> str:
    """A metric as the runs table writes it: JavaScript's shortest round-trip form, which Python's repr shares
    (for the plain decimals metrics are here)."""
    return str(int(value)) if value.is_integer() else repr(value)


def as_the_comparison_shows(value: float) -> str:
    """The comparison page rounds to three decimals and drops trailing zeros."""
    return as_the_table_shows(round(value, 3))


def _logged_in_page(browser: Browser, password: str) -> Page:
    context = browser.new_context(http_credentials={"username": ADMIN_USER, "password": password},
                                  viewport=VIEWPORT)  # fmt: skip
    return context.new_page()


def _close_assistant(page: Page) -> None:
    """The MLflow Assistant panel opens by itself on a browser's first page and covers the right of the table."""
    close = page.get_by_role("button", name="Close", exact=True)
    try:
        close.wait_for(state="visible", timeout=3_000)
    except PlaywrightTimeout:  # a panel that never opened needs no closing
        return
    close.click()
    expect(close).to_be_hidden()


def _expect_model_training_view(page: Page) -> None:
    """The experiment's "Model training" view: its Runs page and sidebar, nothing of the GenAI overview."""
    expect(page).to_have_url(re.compile(r"workflowType=machine_learning"))
    expect(page.get_by_role("link", name="Runs", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Overview", exact=True)).to_have_count(0)
    expect(page.get_by_text("Token Usage")).to_have_count(0)
    # The GenAI / Model training switch marks its choice only by colour: the chosen label is the darker one.
    chosen, other = (_label_darkness(page, name) for name in ("Model training", "GenAI"))
    assert chosen > other, "the UI's switch does not show Model training as chosen"


def _label_darkness(page: Page, name: str) -> int:
    label = page.get_by_role("button", name=name, exact=True)
    colour = label.evaluate("e => getComputedStyle(e.firstElementChild).color")
    return 3 * 255 - sum(int(part) for part in re.findall(r"\d+", colour)[:3])


def _expect_columns(page: Page, shown: tuple[str, ...], hidden: tuple[str, ...]) -> None:
    """The runs table as the project's defaults lay it out: the held-out metrics a run has, without MLflow's own
    first choice of columns (which has no metric at all)."""
    for name in shown:
        expect(page.get_by_role("columnheader", name=name, exact=True).first).to_be_visible()
    for name in hidden:
        expect(page.get_by_role("columnheader", name=name, exact=True)).to_have_count(0)


def _expand(page: Page, parent: str, first_child: str) -> None:
    """Show a parent run's nested runs (the table lists parents collapsed)."""
    if not page.get_by_role("link", name=first_child, exact=True).is_visible():
        page.get_by_role("row").filter(has_text=parent).get_by_role("button").first.click()
    expect(page.get_by_role("link", name=first_child, exact=True)).to_be_visible()


def _metric_cell(page: Page, run_name: str, metric: str) -> Locator:
    """The table's cell for a run's metric. The grid draws a row in two parts (the pinned run name, the scrolling
    values) that share the row's aria-rowindex; a cell's column is its header's aria-colindex."""
    row_index = page.get_by_role("row").filter(has_text=run_name).get_attribute("aria-rowindex")
    column = page.get_by_role("columnheader", name=metric, exact=True).first.get_attribute("aria-colindex")
    return page.locator(f'[role="row"][aria-rowindex="{row_index}"] [role="gridcell"][aria-colindex="{column}"]')


def _widen_column(page: Page, name: str, pixels: int) -> None:
    """Drag a column's right edge, for the screenshot only (whole run names, longer values)."""
    box = page.get_by_role("columnheader", name=name, exact=True).first.bounding_box()
    x, y = box["x"] + box["width"] - 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + pixels, y, steps=5)
    page.mouse.up()


def _version_row(page: Page, version: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Version {version}", exact=True))
