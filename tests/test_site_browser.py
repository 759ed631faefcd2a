"""The published site in a real browser: headless Chromium opens it from file:// (no server).

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` package, which
drives the system browser through ``executable_path``: nothing is downloaded. Screenshots go to
``$SKINBENCH_ARTIFACTS`` (default ``tests/artifacts/``, git-ignored).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from site_fixtures import HOSTILE_NAME

pytest_plugins = ["site_fixtures"]  # the published_run fixture
pytestmark = pytest.mark.slow  # a tiny run, a publish and a browser: about 30 s on the shared 2-core machine

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("SKINBENCH_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium package (.ci/run does) to run the browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A page that records console errors, uncaught exceptions, dialogs and requests leaving file://."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda message: message.type == "error" and tab.problems.append(f"console: {message.text}"))
    tab.on("pageerror", lambda error: tab.problems.append(f"uncaught: {error}"))
    tab.on("dialog", lambda dialog: (tab.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    tab.on("request", lambda request: request.url.startswith("file://") or tab.problems.append(f"fetched {request.url}"))
    yield tab
    context.close()


def screenshot(tab, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def open_page(tab, path: Path) -> None:
    tab.goto(path.as_uri())
    tab.wait_for_load_state("load")


def broken_images(tab) -> list[str]:
    return tab.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")


def test_index_shows_names_as_text_and_the_commit(published_run, page):
    open_page(page, published_run.site / "index.html")
    assert page.locator("section.dataset h2").first.text_content() == HOSTILE_NAME  # rendered as text
    assert page.evaluate("document.scripts.length") == 1  # only the site's own table script
    assert page.locator("b", has_text="clinic").count() == 0
    commit = json.loads((published_run.run_dir / "receipt.json").read_text())["git_commit"] or "unknown"
    assert page.locator("#provenance code.commit").first.text_content().startswith(commit)
    assert broken_images(page) == [] and page.problems == []
    screenshot(page, "site-index")


def test_task_page_sorts_filters_and_loads_every_figure(published_run, page):
    task = next(path for path in (published_run.site / "tasks").glob("*.html") if "</span> texture</h1>" in path.read_text())
    open_page(page, task)
    assert page.evaluate("document.images.length") >= 5  # forest, reliability, augmentation, subgroups, strip
    assert broken_images(page) == []
    screenshot(page, "site-task")

    def column(index: int) -> list[str]:
        return page.eval_on_selector_all("#leaderboard tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.sort)")

    headers = page.locator("#leaderboard thead th")
    macro_f1 = next(i for i in range(headers.count()) if headers.nth(i).text_content().startswith("macro-F1"))
    first = [float(v) for v in column(macro_f1)]
    assert first == sorted(first, reverse=True) and first[0] != first[-1]  # the page lists the best first
    headers.nth(macro_f1).click()
    assert [float(v) for v in column(macro_f1)] == sorted(first)  # ascending: the rows moved
    assert headers.nth(macro_f1).get_attribute("aria-sort") == "ascending"
    headers.nth(macro_f1).click()
    assert [float(v) for v in column(macro_f1)] == first

    page.fill("input[data-filter-for=leaderboard]", "classical")
    visible = page.locator("#leaderboard tbody tr:visible")
    assert visible.count() == 1 and "classical" in visible.first.text_content()
    page.fill("input[data-filter-for=leaderboard]", "")
    assert page.locator("#leaderboard tbody tr:visible").count() == 2
    assert page.problems == []


def test_the_site_still_works_after_moving_it(published_run, page, tmp_path):
    moved = tmp_path / "elsewhere" / "site"
    shutil.copytree(published_run.site, moved)
    open_page(page, moved / "index.html")
    page.locator("section.dataset a").first.click()
    page.wait_for_load_state("load")
    assert page.url.startswith(moved.as_uri()) and broken_images(page) == [] and page.problems == []
