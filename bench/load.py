"""Load test: 20 people using the dashboard at once on a 100k-message run, while an analysis runs.

Run by hand (not a test): ``python bench/load.py [--sessions 20] [--minutes 3] [--size 100000]``.
Bounded and local: it starts its own dashboard server on a free localhost port and talks only to it.

Each simulated person is a real Streamlit session over the server's WebSocket, speaking the same
protocol messages the browser sends (``BackMsg.rerun_script``): they open pages (70% of actions)
and follow links with a filter in them (30%: a sentiment, a topic, a date range or a product,
each a new session as when a link is opened), waiting 1-4 s between actions as a person reading
would. A rerun's time is from sending the request to the server's ``script_finished``; a page
that shows an error (an exception element) or never finishes counts as an error. Meanwhile the
real analysis of the bundled sample runs in the background (into its own store, so the run being
viewed stays the 100k one), and the server's resident memory is sampled every second.

The 100k run is the synthetic one of ``bench/dashboard.py`` (real CFPB texts; topics, sentiment
and tags synthesised): this measures the dashboard under load, not the analysis. Writes
``bench/results/load.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "load.md"
PAGES = ["overview", "trends", "sentiment", "topics", "expectations", "messages", "snapshots", "curate-topics",
         "audit", "data"]
HEADINGS = {"overview": "Overview", "trends": "Trends", "sentiment": "Sentiment", "topics": "Topics",
            "expectations": "Expectation gaps", "messages": "Messages", "snapshots": "Snapshots",
            "curate-topics": "Curate topics", "audit": "Audit", "data": "Data"}


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the server runs scripts in threads, so mostly itself)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Session:
    """One person's dashboard session over the WebSocket."""

    def __init__(self, url: str, query: str = "") -> None:
        self.url, self.query = url, query
        self.ws = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await connect(ws_url, subprotocols=["streamlit"], origin=self.url, max_size=None,
                                open_timeout=60, ping_interval=None)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def rerun(self, page: str, timeout: float = 120) -> tuple[float, bool, bool]:
        """Open ``page``; (seconds until the script finished, whether it showed an error, whether the heading came)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = self.query
        msg.rerun_script.page_name = page
        started = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        error = heading = False
        want = HEADINGS[page].encode()
        deadline = started + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout=max(deadline - time.perf_counter(), 0.1))
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "delta":
                element = fwd.delta.new_element
                if fwd.delta.WhichOneof("type") == "new_element" and element.WhichOneof("type") == "exception":
                    error = True
                heading = heading or want in raw
            elif kind == "script_finished":
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue
                return time.perf_counter() - started, error or fwd.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY, heading


def filter_links(store: Path) -> list[str]:
    """Filter links a manager would open: a sentiment, a topic, a month, a product."""
    from pipelines.store import load_run

    m = load_run(store).messages
    topics = [int(t) for t in m.loc[m["topic"] >= 0, "topic"].value_counts().index[:10]]
    last = m["date"].max()
    months = [((last - pd_offset(k + 1)).strftime("%Y-%m-%d"), (last - pd_offset(k)).strftime("%Y-%m-%d"))
              for k in range(6)]
    products = [str(p) for p in m["product"].value_counts().index[:5]] if "product" in m else []
    from urllib.parse import urlencode

    return ([f"sentiment={s}" for s in ("negative", "positive", "neutral")] + [f"topic={t}" for t in topics]
            + [f"from={a}&to={b}" for a, b in months] + [urlencode({"product": p}) for p in products])


def pd_offset(months: int):
    import pandas as pd

    return pd.DateOffset(months=months)


async def person(url: str, links: list[str], until: float, seed: int, times: list, errors: list) -> None:
    rnd = random.Random(seed)
    session = Session(url)
    await session.open()
    await asyncio.sleep(rnd.uniform(0, 3))  # people do not all arrive in the same second
    try:
        while time.perf_counter() < until:
            page = rnd.choice(PAGES)
            if rnd.random() < 0.3:  # follow a link with a filter: a new session, as a new tab would be
                await session.close()
                session = Session(url, rnd.choice(links))
                await session.open()
            try:
                took, failed, heading = await session.rerun(page)
            except (TimeoutError, OSError) as err:
                errors.append(f"{page}?{session.query}: {type(err).__name__}")
                await session.close()
                session = Session(url)
                await session.open()
                continue
            times.append((page, took))
            if failed or not heading:
                errors.append(f"{page}?{session.query}: {'an error on the page' if failed else 'no heading'}")
            await asyncio.sleep(rnd.uniform(1, 4))
    finally:
        await session.close()


async def crowd(url: str, links: list[str], sessions: int, seconds: float) -> tuple[list, list]:
    times: list = []
    errors: list = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(person(url, links, until, 100 + i, times, errors) for i in range(sessions)))
    return times, errors


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--runs", type=Path, help="keep the generated run in this folder (reused when there)")
    ap.add_argument("--no-analysis", action="store_true", help="no analysis in the background")
    args = ap.parse_args()

    from bench.dashboard import _source, write_run
    from tests.test_e2e_browser import start_server, stop_server

    with tempfile.TemporaryDirectory() as tmp:
        store = (args.runs or Path(tmp)) / f"store-{args.size}"
        if not (store / "latest").exists():
            print("writing the synthetic run ...", file=sys.stderr, flush=True)
            write_run(store, args.size, *_source())
        proc, url = start_server(store, Path(tmp) / "streamlit.log")
        memory: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                memory.append(_rss_mb(proc.pid))
                stop.wait(1)

        threading.Thread(target=sample, daemon=True).start()
        analysis = None
        try:
            print("first views (loading the run) ...", file=sys.stderr, flush=True)
            first: dict[str, float] = {}

            async def warm() -> None:
                s = Session(url)
                await s.open()
                for page in PAGES:
                    first[page], failed, heading = await s.rerun(page)
                    assert not failed and heading, f"{page} did not open cleanly"
                await s.close()

            asyncio.run(warm())
            idle_mb = _rss_mb(proc.pid)
            if not args.no_analysis:
                analysis = subprocess.Popen(
                    [sys.executable, "-m", "pipelines.cli", "analyse", "data/sample/fine_food_reviews.csv",
                     "--mapping", "data/sample/mapping.yaml", "--store", str(Path(tmp) / "analysis-store"), "--quiet"],
                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(5)
            print(f"{args.sessions} sessions for {args.minutes:g} min ...", file=sys.stderr, flush=True)
            load_before = os.getloadavg()[0]
            times, errors = asyncio.run(crowd(url, filter_links(store), args.sessions, args.minutes * 60))
            load_after = os.getloadavg()[0]
            analysis_running = analysis is not None and analysis.poll() is None
        finally:
            stop.set()
            if analysis is not None and analysis.poll() is None:
                analysis.kill()
            stop_server(proc)

    took = [t for _, t in times]
    by_page = {}
    for page, t in times:
        by_page.setdefault(page, []).append(t)
    lines = [
        f"# Dashboard load test ({time.strftime('%Y-%m-%d')})", "",
        f"`python bench/load.py --sessions {args.sessions} --minutes {args.minutes:g} --size {args.size}`: "
        f"{args.sessions} concurrent sessions for {args.minutes:g} minutes on a {args.size:,}-message run, "
        f"{os.cpu_count()} CPU cores, " + ("with the sample's analysis running in the background the whole time"
                                          if analysis_running else "analysis in the background" if analysis
                                          else "no background analysis") +
        f"; 1-minute load average {load_before:.1f} at the start, {load_after:.1f} at the end.", "",
        f"- Reruns: {len(took):,} ({len(took) / (args.minutes * 60):.1f}/s); errors: {len(errors)}",
        f"- Rerun time: median {statistics.median(took):.2f} s, p95 {_pct(took, 0.95):.2f} s, "
        f"max {max(took):.2f} s (target p95 ≤ 1 s)",
        f"- Server memory: {idle_mb:,.0f} MB with the run loaded, peak {max(memory):,.0f} MB under load, "
        f"{memory[-1]:,.0f} MB at the end",
        "- First view of each page after the server started (one session, nothing cached): "
        + ", ".join(f"{p} {s:.1f} s" for p, s in first.items()), "",
        "| page | reruns | median s | p95 s |", "|---|---:|---:|---:|",
        *[f"| {p} | {len(v)} | {statistics.median(v):.2f} | {_pct(v, 0.95):.2f} |" for p, v in sorted(by_page.items())],
    ]
    if errors:
        lines += ["", "Errors (first 20):", *[f"- {e}" for e in errors[:20]]]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
