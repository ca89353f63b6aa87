"""End to end: the real dashboard server on a real run, driven in headless Chromium.

Starts ``streamlit run dashboard/app.py`` with our config on a free port, waits for
``/_stcore/health``, then opens every page, applies a filter in the sidebar, clicks chart points and
a table row through to the messages behind them, and saves a screenshot of each step (the folder is
printed). Uses Debian's ``chromium`` (``make browser`` installs it; Playwright cannot download its own).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipelines.store import load_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}
PAGES = [("Overview", "overview"), ("Trends", "trends"), ("Sentiment", "sentiment"), ("Topics", "topics"),
         ("Expectations", "expectations"), ("Messages", "messages"), ("Snapshots", "snapshots"),
         ("Curate topics", "curate"), ("Audit", "audit"), ("Data", "runs")]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str:
    """Debian's chromium, or a skip (a failure on CI) that says how to install it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "Chromium is not installed: run `make browser` (apt-get install chromium) for the browser tests."
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_server(store: Path, log_path: Path, timeout: float = 90,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the dashboard with the project's Streamlit config on a free port (``env``: more environment, e.g. a
    sign-in mode); wait until it is healthy."""
    from pipelines.cli import streamlit_flags

    port = free_port()
    flags = [f for f in streamlit_flags() if not f.startswith(("--server.port=", "--server.headless="))]
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", *flags, "--server.headless=true",
           f"--server.port={port}", "--browser.gatherUsageStats=false"]
    env = {**os.environ, "FEEDBACK_LENS_STORE": str(store), **(env or {})}
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard server stopped (exit {proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the dashboard server did not become healthy in {timeout:.0f} s:\n{log_path.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until the script has finished running and every chart has been drawn."""
    page.wait_for_timeout(400)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                 .every(c => c.querySelector('.main-svg'))""", timeout=timeout)
    page.wait_for_timeout(300)


def assert_no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


HEADINGS = {"Expectations": "Expectation gaps"}
"""Pages whose heading is longer than their name in the navigation."""


def open_page(page, title: str) -> None:
    """Click a page in the sidebar navigation and wait for it."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.wait_for_selector(f'h1:has-text("{HEADINGS.get(title, title)}")')
    wait_for_app(page)


def go_to(page, address: str, heading: str) -> None:
    """Open ``address`` and wait until the page headed ``heading`` has run and drawn its charts."""
    page.goto(address)
    page.wait_for_selector(f'h1:has-text("{heading}")')
    wait_for_app(page)


def shown_count(page) -> int:
    """The number in "123 messages" (or "1 message") above the message list."""
    text = page.get_by_text(re.compile(r"^\d[\d,]* messages?$")).first.inner_text()
    return int(text.split()[0].replace(",", ""))


def search_messages(page, url: str, words: str) -> None:
    """Open the Messages page and search it for ``words``."""
    go_to(page, f"{url}/messages", "Messages")
    page.get_by_role("textbox", name="Search the messages").fill(words)
    page.keyboard.press("Enter")
    wait_for_app(page)


def click_chart_point(page, chart_key: str, selector: str = ".point path", index: int = 0) -> None:
    """Click one bar or marker of the chart whose Streamlit key is ``chart_key``."""
    chart = page.locator(f".st-key-{chart_key}")
    chart.scroll_into_view_if_needed()
    chart.locator(selector).nth(index).click(force=True)


@pytest.fixture(scope="module")
def dashboard(real_run_store, tmp_path_factory) -> Iterator[str]:
    """The URL of a real dashboard server showing the real test run."""
    proc, url = start_server(real_run_store, tmp_path_factory.mktemp("server") / "streamlit.log")
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def browser_page(dashboard, tmp_path_factory):
    """A Chromium page at the dashboard, and the folder its screenshots go to."""
    from playwright.sync_api import sync_playwright

    shots = tmp_path_factory.mktemp("screenshots")
    print(f"\nScreenshots: {shots}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.set_default_timeout(60_000)
        yield page, shots
        browser.close()


def snap(page, shots: Path, name: str) -> Path:
    """Screenshot the whole page: Streamlit scrolls inside its main area, so grow the window to fit it first."""
    path = shots / f"{name}.png"
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll('[data-testid="stMain"], section')]
                                                .map(e => e.scrollHeight), window.innerHeight)""")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    return path


def test_every_page_opens_and_keeps_a_sidebar_filter(dashboard, browser_page):
    page, shots = browser_page
    go_to(page, dashboard, "Overview")
    assert_no_exception(page)
    assert page.locator('[data-testid="stMetric"]').count() == 4
    snap(page, shots, "01-overview")

    page.locator('[data-testid="stSidebar"] button', has_text="Negative").first.click()
    wait_for_app(page)
    assert "sentiment=negative" in page.url
    assert_no_exception(page)
    for n, (title, slug) in enumerate(PAGES, start=2):
        open_page(page, title)
        assert_no_exception(page)
        assert "sentiment=negative" in page.url, f"the filter was lost on {title}"
        snap(page, shots, f"{n:02d}-{slug}-negative")

    page.locator('[data-testid="stSidebar"] button', has_text="Clear filters").click()
    wait_for_app(page)
    assert "sentiment=" not in page.url


def test_a_link_to_the_first_page_by_its_name_opens_it_with_its_filters(dashboard, browser_page):
    """Overview lives at "/", but bookmarks and typed addresses say "/overview"."""
    page, _ = browser_page
    go_to(page, f"{dashboard}/overview?sentiment=negative", "Overview")
    assert_no_exception(page)
    assert page.get_by_text("Page not found").count() == 0
    assert "sentiment=negative" in page.url
    assert "/overview" not in page.url
    assert page.locator('[data-testid="stSidebar"] button', has_text="Clear filters").is_enabled()


def test_chart_points_and_table_rows_open_their_messages(dashboard, browser_page):
    page, shots = browser_page
    go_to(page, f"{dashboard}/trends", "Trends")
    page.locator(".st-key-trends_granularity button", has_text="Week").click()  # the page's own choice
    wait_for_app(page)
    busiest = page.evaluate("""() => {
        const ys = document.querySelector('.st-key-trends_volume .js-plotly-plot').calcdata[0].map(p => p.y);
        return ys.indexOf(Math.max(...ys)); }""")  # a point with messages behind it
    click_chart_point(page, "trends_volume", ".scatterlayer .trace:first-child .points path", index=busiest)
    page.wait_for_selector('h1:has-text("Messages")')
    wait_for_app(page)
    assert_no_exception(page)
    # The clicked period narrows the dates; a bound equal to the run's own first or last day is left out of the link.
    assert re.search(r"[?&]topic=-?\d+", page.url) and ("from=" in page.url or "to=" in page.url)
    assert page.get_by_text("The messages behind your selection on").count() == 1
    assert shown_count(page) > 0
    snap(page, shots, "20-drill-from-trends")

    page.get_by_role("button", name="Back to Trends").click()
    page.wait_for_selector('h1:has-text("Trends")')
    wait_for_app(page)
    assert "topic=" not in page.url
    # Back as the manager left it: by week, not the step the page starts on.
    active = page.locator('.st-key-trends_granularity button[aria-checked="true"]')
    assert active.inner_text().strip() == "Week"
    snap(page, shots, "21-back-to-trends")

    open_page(page, "Overview")
    click_chart_point(page, "overview_top", ".bars .point path")
    page.wait_for_selector('h1:has-text("Messages")')
    wait_for_app(page)
    assert_no_exception(page)
    assert "topic=" in page.url
    snap(page, shots, "22-drill-from-overview")

    page.get_by_role("button", name="Back to Overview").click()
    page.wait_for_selector('h1:has-text("Overview")')
    wait_for_app(page)
    click_chart_point(page, "overview_top", ".bars .point path")
    page.wait_for_selector('h1:has-text("Messages")')
    wait_for_app(page)
    page.go_back()  # the browser's own Back button does what "Back to Overview" does
    page.wait_for_selector('h1:has-text("Overview")')
    wait_for_app(page)
    assert "topic=" not in page.url
    assert not page.locator('[data-testid="stSidebar"] button', has_text="Clear filters").is_enabled()
    snap(page, shots, "22b-browser-back-to-overview")
    open_page(page, "Topics")
    grid = page.locator('.st-key-topics_table [data-testid="stDataFrameResizable"]')
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 * 1 + 17)  # the second row's selection cell
    page.wait_for_selector('h1:has-text("Messages")')
    wait_for_app(page)
    assert_no_exception(page)
    assert "topic=" in page.url
    snap(page, shots, "23-drill-from-topics-table")


def test_messages_search_and_download(dashboard, browser_page):
    page, shots = browser_page
    search_messages(page, dashboard, "coffee")
    assert_no_exception(page)
    assert shown_count(page) > 0
    messages = page.locator(".st-key-message_list")
    assert messages.locator("strong", has_text=re.compile("coffee", re.I)).count() > 0
    # Customer text stays text: no links, images or HTML from it, even where it holds a URL.
    assert messages.locator("a, img, script, iframe").count() == 0
    snap(page, shots, "30-messages-search")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = Path(download.value.path()).read_text("utf-8")
    assert text.splitlines()[0].startswith("date,topic,sentiment")
    assert "coffee" in text.lower()


def test_semantic_search_finds_messages_by_meaning(dashboard, browser_page):
    page, shots = browser_page
    go_to(page, f"{dashboard}/messages", "Messages")
    page.locator('[data-testid="stButtonGroup"] button', has_text="Meaning").click()
    wait_for_app(page)
    page.get_by_role("textbox", name="Find messages like").fill("my puppy loves it")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=messages closest in meaning", timeout=120_000)
    wait_for_app(page)
    assert_no_exception(page)
    cards = page.locator(".st-key-message_list").inner_text().lower()
    assert "similarity 0." in cards and any(w in cards for w in ("dog", "pup", "cat", "pet"))
    snap(page, shots, "31-messages-semantic")


@pytest.fixture(scope="module")
def curation_server(real_run_store, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A dashboard on a copy of the real run, so edits made here do not reach the other tests."""
    store = tmp_path_factory.mktemp("curation") / "store"
    shutil.copytree(real_run_store, store)
    proc, url = start_server(store, tmp_path_factory.mktemp("server2") / "streamlit.log")
    try:
        yield url, store
    finally:
        stop_server(proc)


def test_an_analyst_renames_and_merges_topics_in_the_browser(curation_server, browser_page):
    from pipelines.curation import CurationLog, load_curated_run

    url, store = curation_server
    page, shots = browser_page
    go_to(page, f"{url}/curate-topics", "Curate topics")
    name = page.get_by_role("textbox", name="Name")
    name.fill("Coffee complaints")
    page.get_by_role("button", name="Save name").click()
    page.wait_for_selector("text=Coffee complaints")
    wait_for_app(page)
    assert_no_exception(page)
    snap(page, shots, "40-curate-renamed")

    page.get_by_role("tab", name="Merge").click()
    wait_for_app(page)  # the tabs rerun the page on a change; a click during that rerun lands on a stale picker
    page.locator('[class*="st-key-curate_merge_v"]').click()  # the picker's key changes with each edit
    page.locator('[role="option"]', has_text="messages)").first.click()  # not the "select all" entry
    page.keyboard.press("Escape")
    wait_for_app(page)
    page.locator(".st-key-curate_merge_go button:not([disabled])").click()
    page.wait_for_selector("text=Merged 1 topic into")
    wait_for_app(page)
    assert_no_exception(page)
    events = CurationLog(store).events()
    assert [e.kind for e in events] == ["rename", "merge"]
    curated = load_curated_run(store).run.topics
    assert "Coffee complaints" in set(curated["label"])

    open_page(page, "Topics")  # every page shows the new name at once
    # The map draws its legend and labels after the script finishes; on a loaded machine that takes a moment.
    page.locator('[data-testid="stPlotlyChart"] text', has_text="Coffee complaints").first.wait_for(timeout=30_000)
    assert page.get_by_text("Coffee complaints").count() > 0
    snap(page, shots, "41-topics-after-curation")
    open_page(page, "Audit")
    assert page.locator('[data-testid="stDataFrame"]').count() == 1
    snap(page, shots, "42-audit")


HOSTILE = ("Refund :red[NOW] :material/warning: $$x^2$$ [click here](http://evil.example) **bold** "
           "<img src=x onerror=\"window.pwned=1\"> <script>window.pwned=2</script> pwned")
HOSTILE_LABEL = '<a href="http://evil.example">e</a><img src=x onerror="window.pwned=3">:blue[x]'


@pytest.fixture(scope="module")
def hostile_server(real_run_store, tmp_path_factory) -> Iterator[str]:
    """A dashboard on a copy of the real run whose topics' most typical messages, a metadata value and a
    topic's name (set through a real curation edit) carry HTML, Markdown links and Streamlit directives."""
    from pipelines.curation import Curator
    from pipelines.store import load_run, new_run_id, publish_run

    run = load_run(real_run_store)
    messages, topics = run.messages.copy(), run.topics.copy()
    first_ids = [str(ids[0]) for ids in topics.loc[topics["topic"] >= 0, "representative_ids"].head(5)]
    reps = messages.index[messages["message_id"].astype(str).isin(first_ids)]
    messages.loc[reps, "text"] = HOSTILE
    messages["rating"] = messages["rating"].astype("string")
    messages.loc[reps, "rating"] = "<b>5</b> [x](http://evil.example)"
    store = tmp_path_factory.mktemp("hostile") / "store"
    shutil.copytree(real_run_store, store)
    publish_run(store, new_run_id(), {"messages": messages, "topics": topics, "keywords": run.keywords},
                run.manifest)
    Curator(store).rename(topics.loc[topics["topic"] >= 0, "key"].iloc[0], HOSTILE_LABEL, user="mallory")
    proc, url = start_server(store, tmp_path_factory.mktemp("server3") / "streamlit.log")
    try:
        yield url
    finally:
        stop_server(proc)


def _live_markup(page) -> dict:
    """What hostile text would have produced had it been rendered: script effects, images, links, coloured spans."""
    return page.evaluate("""() => ({
        pwned: window.pwned === undefined ? null : window.pwned,
        images: document.querySelectorAll('img[src="x"]').length,
        links: [...document.querySelectorAll('a')].filter(a => ((a.getAttribute('href') || '') +
                 (a.getAttribute('xlink:href') || '')).includes('evil.example')).length,
        scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('pwned')).length,
    })""")


def test_hostile_message_text_stays_plain_text_on_every_page(hostile_server, browser_page):
    page, shots = browser_page
    go_to(page, hostile_server, "Overview")
    for title, slug in PAGES:
        open_page(page, title)
        assert_no_exception(page)
        assert _live_markup(page) == {"pwned": None, "images": 0, "links": 0, "scripts": 0}, title
        snap(page, shots, f"40-hostile-{slug}")
    # The text itself is there, every character as the customer wrote it.
    search_messages(page, hostile_server, "pwned")
    assert shown_count(page) == 5
    # A word joiner keeps Markdown from turning a bare address into a link; it is invisible.
    shown = page.locator(".st-key-message_list").inner_text().replace("\u2060", "")
    for piece in (":red[NOW]", ":material/warning:", "$$x^2$$", "[click here](http://evil.example)",
                  '<img src=x onerror="window.pwned=1">', "<script>window.pwned=2</script>", "<b>5</b>"):
        assert piece in shown, piece
    assert _live_markup(page) == {"pwned": None, "images": 0, "links": 0, "scripts": 0}
    snap(page, shots, "41-hostile-messages")


def test_a_dot_of_the_topic_map_and_a_falling_mover_open_their_own_messages(dashboard, browser_page, real_run_store):
    """Every dot of the map opened topic 0 (its topic reached the click as {"0": t}); a topic that fell to none
    opened an empty list (only the later period)."""
    page, shots = browser_page
    go_to(page, dashboard, "Overview")
    open_page(page, "Topics")
    chart = page.locator(".st-key-topics_map .js-plotly-plot")
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    # The first dot of the second-largest topic (its trace's topic is not 0), and where it is drawn on the page.
    spot = page.evaluate("""() => {
        const gd = document.querySelector('.st-key-topics_map .js-plotly-plot');
        const trace = gd._fullData.find(t => t.customdata[0][0] > 0);  // arrays decoded from their base64
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
        return {topic: trace.customdata[0][0], x: box.left + xa._offset + xa.l2p(trace.x[0]),
                y: box.top + ya._offset + ya.l2p(trace.y[0])}; }""")
    page.mouse.click(spot["x"], spot["y"])
    page.wait_for_selector('h1:has-text("Messages")')
    wait_for_app(page)
    assert_no_exception(page)
    assert re.search(rf"[?&]topic={spot['topic']}(&|$)", page.url), (spot, page.url)
    snap(page, shots, "24-drill-from-topic-map")

    open_page(page, "Overview")
    bars = page.evaluate("""() => {
        const gd = document.querySelector('.st-key-overview_movers .js-plotly-plot');
        return gd.calcdata.flatMap((t, i) => t.map((p, j) => ({trace: i, point: j, x: p.s ?? p.x ?? p.p})));}""")
    falling = [b for b in bars if isinstance(b["x"], (int, float)) and b["x"] < 0]
    assert falling, bars  # the sample run's last 30 days have topics that fell
    click_chart_point(page, "overview_movers", f".trace:nth-child({falling[0]['trace'] + 1}) .point path",
                      index=falling[0]["point"])
    page.wait_for_selector('h1:has-text("Messages")')
    wait_for_app(page)
    assert_no_exception(page)
    assert shown_count(page) > 0
    # Both periods of the default 30 days: from the first of the 60 days that end on the run's last day.
    start = date.fromisoformat(re.search(r"[?&]from=(\d{4}-\d{2}-\d{2})", page.url).group(1))
    last = load_run(real_run_store).messages["date"].max().date()
    assert (last - start).days == 59, page.url


def test_a_cell_of_the_sentiment_heatmap_opens_its_topic_and_period(dashboard, browser_page, real_run_store):
    """Plotly selects no heatmap cell on a click; the invisible marker on each cell's centre does, from anywhere in
    the cell (here off its centre)."""
    page, shots = browser_page
    go_to(page, f"{dashboard}/sentiment", "Sentiment")
    # Weeks: narrow cells, where markers wider than a cell once sent the click to the next week.
    page.locator(".st-key-sentiment_granularity button", has_text="Week").click()
    wait_for_app(page)
    chart = page.locator(".st-key-sentiment_topics .js-plotly-plot")
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    spot = page.evaluate("""() => {
        const gd = document.querySelector('.st-key-sentiment_topics .js-plotly-plot');
        const cells = gd._fullData[2], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const i = cells.customdata.findIndex((c, k) => c[2] > 0 && k > 0 && cells.y[k - 1] === cells.y[k]);
        const width = xa.d2p(cells.x[i]) - xa.d2p(cells.x[i - 1]), box = gd.getBoundingClientRect();
        return {cell: cells.customdata[i], width: width,  // a third of a cell right of its centre, a little up
                x: box.left + xa._offset + xa.d2p(cells.x[i]) + width / 3, y: box.top + ya._offset + ya.d2p(cells.y[i]) - 8};
    }""")
    assert spot["width"] < 30, spot  # the narrow case
    topic, first_day, messages = spot["cell"]
    page.mouse.click(spot["x"], spot["y"])
    page.wait_for_selector('h1:has-text("Messages")')
    wait_for_app(page)
    assert_no_exception(page)
    page.wait_for_function(f"() => /[?&]topic={topic}(&|$)/.test(location.search)")
    assert f"from={first_day}" in page.url, (spot, page.url)
    assert shown_count(page) == messages
    snap(page, shots, "25-drill-from-sentiment-heatmap")


def test_the_upload_form_says_when_the_browser_is_in_another_zone_than_the_latest_run(dashboard, browser_page,
                                                                                       small_sample_csv, tmp_path):
    """A file from New York added where the runs are in UTC: the form starts on the run's zone (a team's weekly
    exports) and says that the browser is on another one, so a file from elsewhere is not read in the wrong zone
    unawares."""
    upload = tmp_path / "export.csv"
    upload.write_text("".join(small_sample_csv.read_text().splitlines(keepends=True)[:30]))
    # A second context of the same browser, on New York's clock (a second Playwright could not start beside the first).
    context = browser_page[0].context.browser.new_context(viewport=VIEWPORT, timezone_id="America/New_York")
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(dashboard)
        wait_for_app(page)
        open_page(page, "Data")
        page.locator('input[type="file"]').set_input_files(str(upload))
        form = page.locator('[data-testid="stForm"]')
        form.wait_for()
        wait_for_app(page)
        assert_no_exception(page)
        assert form.get_by_role("combobox", name="Your time zone").input_value() == "UTC"  # the latest run's
        assert form.get_by_text("The latest run's zone; your browser is on America/New_York.").count() == 1
    finally:
        context.close()


def test_a_password_sign_in_survives_a_reload_and_a_new_tab_until_signing_out(browser_page, real_run_store,
                                                                              tmp_path_factory):
    from pipelines.auth import Users

    users_file = tmp_path_factory.mktemp("sign-in") / "users.json"
    Users(users_file).add("vera", "viewer", "viewer pass 1")
    proc, url = start_server(real_run_store, users_file.with_name("streamlit.log"),
                             env={"FEEDBACK_LENS_AUTH": "password", "FEEDBACK_LENS_USERS": str(users_file)})
    shots = browser_page[1]
    browser = browser_page[0].context.browser
    context = browser.new_context(viewport=VIEWPORT)  # its own cookies
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/topics")
        page.get_by_role("textbox", name="User name").fill("vera")
        page.get_by_role("textbox", name="Password").fill("viewer pass 1")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector('h1:has-text("Topics")')
        wait_for_app(page)
        page.wait_for_function("document.cookie.includes('feedback_lens_sign_in=')")
        cookie = next(c for c in context.cookies() if c["name"] == "feedback_lens_sign_in")
        assert cookie["sameSite"] == "Strict" and cookie["expires"] > time.time() + 6.9 * 86_400

        page.reload()  # it asked again before 2026-12-07
        page.wait_for_selector('h1:has-text("Topics")')
        wait_for_app(page)
        assert "vera · viewer" in page.locator('[data-testid="stSidebar"]').inner_text()
        tab = context.new_page()  # a link opened in a new tab
        go_to(tab, f"{url}/sentiment", "Sentiment")
        assert_no_exception(tab)
        snap(tab, shots, "60-signed-in-new-tab")
        tab.close()

        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="Sign in").wait_for()
        page.wait_for_function("!document.cookie.includes('feedback_lens_sign_in=')")
        page.reload()
        page.get_by_role("button", name="Sign in").wait_for()
        assert page.locator('h1:has-text("Topics")').count() == 0
        # A copy of the cookie taken before signing out signs nobody in: the server ended that sign-in.
        copied = browser.new_context(viewport=VIEWPORT)
        copied.add_cookies([cookie])
        stale = copied.new_page()
        stale.goto(f"{url}/topics")
        stale.get_by_role("button", name="Sign in").wait_for()
        assert stale.locator('h1:has-text("Topics")').count() == 0
        snap(stale, shots, "61-signed-out-cookie-refused")
        copied.close()
    finally:
        context.close()
        stop_server(proc)
