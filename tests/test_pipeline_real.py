"""The whole analysis through the real path: packaged model, BERTopic, sentiment, store, CLI."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines.analyse import analyse_file
from pipelines.settings import ColumnMapping, Settings
from pipelines.store import latest_run_id, list_runs, load_run, runs_dir

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "pipelines.cli"]
pytestmark = pytest.mark.slow


def test_run_has_readable_topics_bounded_outliers_and_sentiment(real_run_store):
    run = load_run(real_run_store)
    m, topics = run.messages, run.topics
    assert len(m) == run.manifest["counts"]["messages"] > 400
    assert len(topics) >= 3
    assert (m["topic"] == -1).mean() <= 0.10
    for label in topics["label"]:
        assert re.fullmatch(r"[^\W\d_][\w'-]*( [^\W\d_][\w'-]*)?( · [^\W\d_][\w'-]*( [^\W\d_][\w'-]*)?){1,2}", label), label
        assert not set(label.replace(" · ", " ").split()) & {"the", "and", "to", "xxxx", "br"}
    assert topics["size"].sum() == (m["topic"] != -1).sum()
    assert all(len(ids) > 0 and set(ids) <= set(m["message_id"]) for ids in topics["representative_ids"])
    assert m["sentiment"].between(-1, 1).all()
    assert set(m["sentiment_label"]) <= {"negative", "neutral", "positive"}
    # Reviews below 5 stars read more negative than 5-star ones: the scorer measures something real.
    by_rating = m.groupby("rating")["sentiment"].mean()
    assert by_rating["5 stars"] > by_rating["1-4 stars"] + 0.2
    manifest = run.manifest
    assert manifest["input"]["sha256"] and manifest["versions"]["bertopic"]
    assert set(manifest["timings"]) >= {"read", "clean", "embed", "topics", "sentiment"}
    assert manifest["note"] == "Test run: real reviews, synthetic dates."
    assert str(m["date"].dt.tz) == "UTC" and m["date"].notna().all()


def test_run_tags_expectation_areas_and_statements(real_run_store):
    run = load_run(real_run_store)
    m = run.messages
    keys = {a["key"] for a in run.manifest["expectation_areas"]}
    assert len(keys) == 8
    assert all(set(areas) <= keys for areas in m["areas"])
    assert (m["areas"].map(len) > 0).mean() > 0.3  # most reviews touch some area (quality, pricing, ...)
    statements = m[m["expectation"]]
    assert len(statements) >= 5
    for row in statements.itertuples():
        # the highlight is the sentence, or within a long one the clauses around its cue phrase
        highlight = row.text[row.expectation_start : row.expectation_end]
        assert highlight == row.expectation_sentence or (
            highlight in row.expectation_sentence and len(row.expectation_sentence) > 240 and len(highlight) <= 240)
        assert row.expectation_met in {"met", "unmet"}
        assert row.expectation_source in {"company", "other_brands", "reviews", "previous", "unknown"}
    assert (m.loc[~m["expectation"], "expectation_start"] == -1).all()


def test_malformed_taxonomy_stops_before_any_work(tmp_path):
    bad = tmp_path / "areas.yaml"
    bad.write_text("areas:\n  - key: speed\n    name: Speed\n    description: [unclosed\n")
    proc = subprocess.run([*CLI, "analyse", str(ROOT / "data/sample/fine_food_reviews.csv"), "--store",
                           str(tmp_path / "s"), "--taxonomy", str(bad), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: The expectation-area file {bad} is not valid YAML at line 5, column 1")
    assert "Traceback" not in proc.stderr and not (tmp_path / "s").exists()


def test_same_input_gives_same_topics_and_reuses_the_cache(real_run_store, small_sample_csv, encoder, tmp_path):
    first = load_run(real_run_store)
    # A fresh store: embeddings are computed again, and the topics must come out identical.
    fresh = analyse_file(small_sample_csv, ColumnMapping(metadata=("rating",)), Settings(store_dir=tmp_path), encoder=encoder)
    assert fresh.newly_embedded == fresh.messages
    second = load_run(tmp_path)
    assert second.messages["topic"].tolist() == first.messages["topic"].tolist()
    assert second.topics["label"].tolist() == first.topics["label"].tolist()
    # Re-running on the same store embeds nothing new.
    again = analyse_file(small_sample_csv, ColumnMapping(metadata=("rating",)), Settings(store_dir=tmp_path), encoder=encoder)
    assert again.newly_embedded == 0
    assert load_run(tmp_path).messages["topic"].tolist() == first.messages["topic"].tolist()
    assert len(list_runs(tmp_path)) == 2


def test_cache_embeds_only_new_messages(real_run_store, small_sample_csv, sample_frame, encoder, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    bigger = tmp_path / "bigger.csv"
    import pandas as pd

    extra = sample_frame.iloc[1::12].head(40)
    pd.concat([pd.read_csv(small_sample_csv), extra]).to_csv(bigger, index=False)
    summary = analyse_file(bigger, ColumnMapping(metadata=("rating",)), Settings(store_dir=store), encoder=encoder)
    assert summary.newly_embedded == 40


def test_offline_guard_no_download_is_attempted(tmp_path):
    """Load and use the default encoder with every network connection refused and recorded."""
    script = (
        "import socket, os\n"
        "for k in list(os.environ):\n"
        "    if k.startswith(('HF_', 'TRANSFORMERS_')): del os.environ[k]\n"
        "attempts = []\n"
        "def refuse(self, address, *a, **k):\n"
        "    attempts.append(address)\n"
        "    raise OSError('network disabled in test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = lambda address, *a, **k: refuse(None, address)\n"
        "from pipelines.embed import SentenceTransformerEncoder\n"
        "enc = SentenceTransformerEncoder()\n"
        "v = enc.encode(['the refund took three weeks', 'fast delivery, great service'])\n"
        "assert v.shape == (2, 384), v.shape\n"
        "import huggingface_hub.constants as c\n"
        "assert c.HF_HUB_OFFLINE, 'offline switch not set'\n"
        "print('attempts', attempts)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_HOME"] = str(tmp_path / "empty-hf-home")  # nothing cached: a download would be the only way
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "attempts []" in proc.stdout


def test_unknown_encoder_fails_offline_with_a_clear_message(tmp_path):
    proc = subprocess.run([*CLI, "analyse", str(ROOT / "data/sample/fine_food_reviews.csv"), "--store", str(tmp_path),
                           "--encoder", "some-org/not-installed-model", "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.startswith('Error: The encoder "some-org/not-installed-model" is not available on this machine')
    assert "Feedback Lens never downloads models at run time" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_help_and_user_errors_without_traceback(tmp_path):
    for cmd in ([], ["analyse"], ["serve"], ["runs"]):
        proc = subprocess.run([*CLI, *cmd, "--help"], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0 and "usage: feedback-lens" in proc.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("id,remarks\n1,x\n")
    proc = subprocess.run([*CLI, "analyse", str(bad), "--store", str(tmp_path / "s"), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr == (
        "Error: bad.csv: no message text column found. The columns are: 'id', 'remarks'.\n"
        "  How to fix: Pass --text COLUMN (or name the column text, message, review, comment or body).\n"
    )
    missing = subprocess.run([*CLI, "analyse", "nowhere.csv", "--quiet"], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: nowhere.csv: file not found.")


@pytest.mark.parametrize("n", [1, 5])
def test_too_few_messages_is_a_clear_error(tmp_path, n):
    small = tmp_path / "few.csv"
    small.write_text("text\n" + "\n".join(f"message number {i} about delivery" for i in range(n)) + "\n")
    proc = subprocess.run([*CLI, "analyse", str(small), "--store", str(tmp_path / "s"), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == (
        f"Error: few.csv: not enough messages to find topics: {n} after cleaning, at least 30 are needed.\n"
        "  How to fix: Add more feedback to the file (a few hundred messages give useful topics).\n"
    )
    assert not (tmp_path / "s" / "latest").exists()


def test_thirty_messages_give_a_whole_run(sample_frame, encoder, tmp_path):
    """The smallest file we accept: UMAP and HDBSCAN must not fail on it, and every message is placed."""
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping, Settings

    path = tmp_path / "thirty.csv"
    sample_frame.iloc[100:130].to_csv(path, index=False)
    summary = analyse_file(path, ColumnMapping(metadata=("rating",)), Settings(store_dir=tmp_path / "s"), encoder=encoder)
    run = load_run(tmp_path / "s")
    assert summary.messages == len(run.messages) == 30
    assert summary.topics >= 1 and len(run.topics) >= 1
    assert run.messages["sentiment"].between(-1, 1).all()
    assert (run.messages["topic"] == -1).mean() <= 0.5


def _run_and_kill(args: list[str], when: str, cwd: Path) -> int:
    """Start the CLI, SIGKILL it as soon as ``when`` appears in its progress output; return its exit code."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
    seen = threading.Event()

    def watch() -> None:
        buf = ""
        while True:
            ch = proc.stderr.read(1)
            if not ch:
                return
            buf = (buf + ch)[-500:]
            if when in buf:
                seen.set()

    threading.Thread(target=watch, daemon=True).start()
    assert seen.wait(timeout=300), f"never reached {when!r}"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


@pytest.mark.parametrize("stage", ["Embedding", "Finding topics"])
def test_killing_a_real_run_keeps_the_previous_run(real_run_store, sample_frame, tmp_path, stage):
    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    before = latest_run_id(store)
    messages_before = load_run(store).messages
    newer = tmp_path / "newer.csv"
    sample_frame.iloc[5::12].to_csv(newer, index=False)  # texts not in the cache: a long embedding stage
    code = _run_and_kill([*CLI, "analyse", str(newer), "--store", str(store)], stage, ROOT)
    assert code == -signal.SIGKILL
    assert latest_run_id(store) == before
    assert [m["id"] for m in list_runs(store)] == [before]
    assert load_run(store).messages.equals(messages_before)
    # The next run works and becomes the latest; no temporary debris is left behind.
    proc = subprocess.run([*CLI, "analyse", str(newer), "--store", str(store), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert latest_run_id(store) != before
    assert not list(runs_dir(store).glob(".tmp-*"))
    assert "Run written to" in proc.stdout


def test_cli_summary_is_one_screen(real_run_store, small_sample_csv, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    proc = subprocess.run([*CLI, "analyse", str(small_sample_csv), "--store", str(store), "--meta", "rating"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert len(out.splitlines()) <= 24
    for part in ("Messages read", "Skipped", "Dates             ", " (UTC)", "Topics found", "Outliers", "Time per stage",
                 "Run written to",
                 'text="text" date="date" id="review_id" metadata="rating"'):
        assert part in out
    assert "Embedding" in proc.stderr  # a progress bar was drawn
    assert "Newly embedded    0" in out
    assert np.isclose(load_run(store).manifest["counts"]["outlier_share"],
                      float(re.search(r"Outliers +([\d.]+)%", out).group(1)) / 100, atol=0.001)
