"""Redactions kept on disk between runs, so a re-run redacts only the messages it has not seen.

A weekly export that grows by 1,000 messages on top of 100,000 would otherwise run every pattern
over every message again (about 8 s of a re-run here). The cache maps each original text to its
redacted form and its findings per kind; texts that had nothing to redact are kept as a key only.

Privacy: the key is a keyed hash (BLAKE2b, a MAC) of the original text under a random secret made for this store
(``<store>/cache/redactions/secret``, readable by its owner only), not a plain hash, so the cache
cannot be used to confirm a guess about an original message without that secret; and only
redacted texts are stored. The folder name carries a fingerprint of the redaction rules (the
redactor's name and the source of :mod:`pipelines.redact`), so redactions made under other rules
are never reused.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipelines import redact
from pipelines.redact import KINDS


def rules_fingerprint(redactor_name: str) -> str:
    """Changes whenever the redaction rules could give another result."""
    source = Path(redact.__file__).read_bytes()
    return hashlib.sha1(redactor_name.encode() + b"\n" + source).hexdigest()[:16]


class RedactionCache:
    """A :class:`pipelines.redact.RedactionMemo` on disk: Parquet shards, written atomically."""

    MAX_SHARDS = 16  # merged into one when exceeded

    def __init__(self, root: Path, redactor_name: str) -> None:
        self.root = Path(root)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", redactor_name).strip("_") or "redactor"
        self.dir = self.root / f"{slug}-{rules_fingerprint(redactor_name)}"
        self._secret: bytes | None = None

    def _key(self) -> bytes:
        if self._secret is None:
            path = self.root / "secret"
            if not path.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                tmp = self.root / f".tmp-secret-{uuid.uuid4().hex}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
                try:
                    os.link(tmp, path)  # fails if another run made it first: then both use that one
                except FileExistsError:
                    pass
                finally:
                    tmp.unlink(missing_ok=True)
            self._secret = path.read_bytes()
        return self._secret

    def keys(self, texts: Sequence[str]) -> list[str]:
        """The cache key of each text."""
        secret = self._key()
        return [hashlib.blake2b(t.encode("utf-8"), key=secret, digest_size=20).hexdigest() for t in texts]

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet")) if self.dir.exists() else []

    def _load(self) -> pd.DataFrame:
        frames = []
        for shard in self._shards():
            try:
                frames.append(pd.read_parquet(shard))
            except (OSError, ValueError):
                continue  # an unreadable shard is only a cache miss
        if not frames:
            return pd.DataFrame({"key": pd.Series(dtype=str)})
        table = pd.concat(frames, ignore_index=True)
        return table.drop_duplicates("key")

    def recall(self, texts: Sequence[str]) -> list[tuple[str, dict[str, int]] | None]:
        """For each text, its redacted form and findings per kind, or None when not cached."""
        table = self._load()
        if not len(table) or not len(texts):
            return [None] * len(texts)
        at = pd.Index(table["key"]).get_indexer(self.keys(texts))
        redacted = table["redacted"].to_numpy(dtype=object)
        found = table[list(KINDS)].to_numpy()
        out: list[tuple[str, dict[str, int]] | None] = []
        for text, j in zip(texts, at, strict=True):
            if j < 0:
                out.append(None)
            elif not isinstance(redacted[j], str):  # nothing was redacted
                out.append((text, {}))
            else:
                out.append((str(redacted[j]), {k: int(n) for k, n in zip(KINDS, found[j], strict=True) if n}))
        return out

    def remember(self, texts: Sequence[str], redacted: Sequence[str], counts: Sequence[dict[str, int]]) -> None:
        """Keep the redactions of ``texts`` (one new shard; shards are merged when there are too many)."""
        if not len(texts):
            return
        table = pd.DataFrame({"key": self.keys(texts),
                              "redacted": pd.Series([r if r != t else None for t, r in zip(texts, redacted, strict=True)],
                                                    dtype=object)})
        for kind in KINDS:
            table[kind] = pd.array([c.get(kind, 0) for c in counts], dtype="int32")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write(table)
        shards = self._shards()
        if len(shards) > self.MAX_SHARDS:
            self._write(self._load())
            for shard in shards:
                shard.unlink(missing_ok=True)

    def _write(self, table: pd.DataFrame) -> None:
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = self.dir / f".tmp-{name}"
        with open(tmp, "wb") as f:
            table.to_parquet(f, index=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / name)
