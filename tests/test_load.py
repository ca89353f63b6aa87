"""Many people at once (a bounded, local version of ``bench/load.py`` that CI runs).

Eight real Streamlit sessions over the dashboard server's WebSocket open pages and follow filter
links for 40 seconds on the real test run, while an analysis runs beside the server: every page
view must finish without an error and show its page. Timing targets are measured by the bench on
a 100k-message run, not asserted here.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]


def test_eight_sessions_at_once_with_an_analysis_running_see_no_errors(real_run_store, small_sample_csv, tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench.load import crowd, filter_links
    from tests.test_e2e_browser import start_server, stop_server

    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    proc, url = start_server(store, tmp_path / "streamlit.log")
    analysis = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "analyse", str(small_sample_csv), "--store",
                                 str(tmp_path / "other-store"), "--quiet"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        times, errors = asyncio.run(crowd(url, filter_links(store), sessions=8, seconds=40))
    finally:
        analysis.kill()
        stop_server(proc)
    assert errors == []
    assert len(times) >= 40 and len({page for page, _ in times}) >= 8
