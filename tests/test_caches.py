"""The caches that make re-runs cheap: embeddings (memory-mapped shards) and redactions (keyed by a secret)."""

from __future__ import annotations

import hashlib
import stat

import numpy as np
import pandas as pd
import pytest

from pipelines.embed import EmbeddingCache, hash_prefixes
from pipelines.redact import PatternRedactor, redact_messages
from pipelines.redaction_cache import RedactionCache


def _hashes(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha1(f"{salt}{i}".encode()).hexdigest() for i in range(n)]


def test_hash_prefixes_are_the_first_64_bits():
    h = _hashes(5)
    assert hash_prefixes(np.array(h, dtype="S40")).tolist() == [int(x[:16], 16) for x in h]


def test_embedding_cache_finds_what_was_added_across_shards(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc")
    rng = np.random.default_rng(0)
    a, b = rng.random((50, 8), dtype=np.float32), rng.random((30, 8), dtype=np.float32)
    cache.add(_hashes(50), a)
    cache.add(_hashes(30, "b"), b)
    wanted = _hashes(50)[::7] + ["f" * 40] + _hashes(30, "b")[:3]
    found, vectors = cache.lookup(wanted, 8)
    assert found.tolist() == [True] * 8 + [False] + [True] * 3
    np.testing.assert_array_equal(vectors[:8], a[::7])
    np.testing.assert_array_equal(vectors[9:], b[:3])
    # Another dimension (another model's vectors) is never returned.
    assert not cache.lookup(wanted, 4)[0].any()
    # Vectors can go straight into the caller's array.
    into = np.zeros((10, 8), dtype=np.float32)
    found, same = cache.lookup(_hashes(50)[:2], 8, into=into, rows=np.array([9, 3]))
    assert same is into and found.all()
    np.testing.assert_array_equal(into[[9, 3]], a[:2])
    assert not into[[0, 1, 2, 4]].any()


def test_embedding_cache_lookups_see_every_add_and_other_writers(tmp_path, monkeypatch):
    """One cache object keeps the shards it has read between lookups; vectors added since, by it or by another
    process, and shards merged away are still looked up right."""
    rng = np.random.default_rng(1)
    cache, other = EmbeddingCache(tmp_path, "enc"), EmbeddingCache(tmp_path, "enc")
    monkeypatch.setattr(EmbeddingCache, "MAX_SHARDS", 3)
    added: dict[str, np.ndarray] = {}
    for batch in range(6):
        writer = other if batch % 2 else cache
        h, v = _hashes(50, f"b{batch}"), rng.random((50, 4), dtype=np.float32)
        writer.add(h, v)
        added.update(zip(h, v, strict=True))
        keys = [*added, *_hashes(3, "never")]
        found, vectors = cache.lookup(keys, 4)
        assert found.tolist() == [True] * len(added) + [False] * 3
        np.testing.assert_array_equal(vectors[: len(added)], np.stack(list(added.values())))
        assert not cache.lookup(keys, 8)[0].any()  # vectors of another size are another encoder's
    assert len(cache._shards()) <= 3  # merged on the way


def test_embedding_cache_matches_whole_hashes_not_only_their_prefix(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc")
    stored = "0123456789abcdef" + "0" * 24
    cache.add([stored], np.ones((1, 4), dtype=np.float32))
    found, _ = cache.lookup(["0123456789abcdef" + "1" * 24, stored], 4)
    assert found.tolist() == [False, True]


def test_embedding_cache_reads_old_npz_shards_and_merges_many(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc")
    cache.dir.mkdir(parents=True)
    old = np.arange(12, dtype=np.float32).reshape(3, 4)
    with open(cache.dir / "part-old.npz", "wb") as f:
        np.savez(f, hashes=np.array(_hashes(3), dtype="U40"), vectors=old)
    found, vectors = cache.lookup(_hashes(3), 4)
    assert found.all() and np.array_equal(vectors, old)
    for i in range(EmbeddingCache.MAX_SHARDS):
        cache.add(_hashes(2, f"s{i}"), np.full((2, 4), i, dtype=np.float32))
    assert len(cache._shards()) == 1  # merged, the old file included
    found, vectors = cache.lookup(_hashes(3) + _hashes(2, "s5"), 4)
    assert found.all() and np.array_equal(vectors[:3], old) and (vectors[3:] == 5).all()


def test_a_broken_embedding_shard_is_only_a_miss(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc")
    cache.add(_hashes(2), np.ones((2, 4), dtype=np.float32))
    (cache.dir / "part-broken").mkdir()
    (cache.dir / "part-broken" / "hashes.npy").write_bytes(b"not an array")
    assert cache.lookup(_hashes(2), 4)[0].all()


class CountingRedactor(PatternRedactor):
    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def redact(self, texts):
        self.seen += list(texts)
        return super().redact(texts)


MESSAGES = ["Call me on +44 7911 123456 please", "Great coffee, fast delivery", "Mail jo.smith@gmail.com or +1 415 555 2671",
            "Arrived late again"]


def _frame(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"message_id": [f"m{i}" for i in range(len(texts))], "text": texts,
                         "text_hash": ["x"] * len(texts), "channel": ["Mail jo.smith@gmail.com"] + ["web"] * (len(texts) - 1)})


def test_a_re_run_redacts_only_texts_it_has_not_seen(tmp_path):
    plain, plain_counts = redact_messages(_frame(MESSAGES), ["channel"])
    memo = RedactionCache(tmp_path, PatternRedactor().name)
    first = CountingRedactor()
    out, counts = redact_messages(_frame(MESSAGES), ["channel"], redactor=first, memo=memo)
    pd.testing.assert_frame_equal(out, plain)
    assert counts == plain_counts and counts["phone"] == 2 and counts["email"] == 2
    again = CountingRedactor()
    more = [*MESSAGES, "Ring 020 7946 0958 today"]
    out, counts = redact_messages(_frame(more), ["channel"], redactor=again, memo=memo)
    assert out["text"].tolist()[:4] == plain["text"].tolist() and out["text"].iloc[4] == "Ring [phone] today"
    assert counts["phone"] == 3 and counts["email"] == 2
    # Of the texts only the new one is read (metadata values are redacted every time: they are few).
    assert not set(again.seen) & set(MESSAGES) and "Ring 020 7946 0958 today" in again.seen
    assert set(MESSAGES) <= set(first.seen)


def test_the_redaction_cache_holds_no_plain_hash_or_original_text(tmp_path):
    memo = RedactionCache(tmp_path, PatternRedactor().name)
    redact_messages(_frame(MESSAGES), [], memo=memo)
    secret = tmp_path / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    stored = pd.concat(pd.read_parquet(p) for p in memo.dir.glob("part-*.parquet"))
    assert not set(stored["key"]) & {hashlib.sha1(t.encode()).hexdigest() for t in MESSAGES}
    assert not any("7911" in str(v) or "gmail" in str(v) for v in stored["redacted"])
    # Other rules (another redactor, or an edited pipelines/redact.py) never reuse these redactions.
    other = RedactionCache(tmp_path, PatternRedactor(names="cues").name)
    assert other.recall(MESSAGES) == [None] * len(MESSAGES)


def test_a_broken_redaction_shard_is_only_a_miss(tmp_path):
    memo = RedactionCache(tmp_path, PatternRedactor().name)
    redact_messages(_frame(MESSAGES), [], memo=memo)
    (memo.dir / "part-zzz.parquet").write_bytes(b"garbage")
    assert all(r is not None for r in memo.recall(MESSAGES))


@pytest.mark.slow
def test_compiled_encoder_gives_the_same_vectors(sample_frame):
    from pipelines.embed import SentenceTransformerEncoder
    from pipelines.expectations import sentence_spans

    texts = sample_frame["text"].astype(str).iloc[::30].tolist()[:40]
    eager = SentenceTransformerEncoder(compile="never")
    compiled = SentenceTransformerEncoder(compile="always")
    a, b = eager.encode(texts), compiled.encode(texts)
    assert compiled.compiled and not eager.compiled and "compiled" in compiled.backend
    assert np.sum(a * b, axis=1).min() > 0.9999
    spans = [sentence_spans(t) for t in texts]
    messages, sentences = compiled.encode_with_spans(texts, spans)
    np.testing.assert_array_equal(messages, b)  # one pass still gives the encoder's own message vectors
    assert np.sum(sentences * eager.encode_spans(texts, spans), axis=1).min() > 0.999


def test_auto_compiles_only_once_there_is_enough_work(monkeypatch):
    from pipelines import embed

    calls = []
    monkeypatch.setattr(embed, "compiled_forward", lambda f: calls.append(f) or f)
    encoder = embed.SentenceTransformerEncoder(compile="auto", compile_after=30)
    encoder.encode(["short one"] * 20)
    assert not encoder.compiled
    encoder.encode(["short one"] * 20)
    assert encoder.compiled and len(calls) == 1
    encoder.encode(["short one"] * 20)
    assert len(calls) == 1
    with pytest.raises(Exception, match="Unknown compile choice"):
        embed.SentenceTransformerEncoder(compile="sometimes")


def test_a_failed_compile_falls_back_to_running_eagerly(monkeypatch, caplog):
    import torch

    from pipelines.embed import compiled_forward

    def broken(fn, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    forward = compiled_forward(lambda x: x + 1)
    assert forward(1) == 2 and forward(2) == 3
    assert "Compiling the encoder failed" in caplog.text
