"""The encoder on ONNX Runtime with int8 weights: an optional backend for CPUs without native bf16.

Owns: exporting a sentence-transformers model's transformer to ONNX once (``torch.onnx.export``),
dynamic int8 quantisation of its MatMul weights (per output channel: per-tensor scales cost too much
accuracy on MiniLM, cosine 0.95 instead of 0.99), and running it with mean pooling. The exported
files live beside the embedding cache and are made again when the model or the libraries change.

It is not the default: on the 2-core test machine (Intel, AMX) it embeds no faster than PyTorch in
fp32 and 2.5× slower than PyTorch in bf16, and its vectors fall below cosine 0.99 of the fp32 ones
for some messages (bench/results/encoder.md). Its vectors are cached apart from the PyTorch ones.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipelines.embed import SPAN_METHOD, Progress, encode_in_context, enforce_offline, resolve_model_path, window_runner
from pipelines.errors import FeedbackLensError
from pipelines.settings import DEFAULT_ENCODER

BACKEND = "onnx-int8"


def _missing(package: str) -> FeedbackLensError:
    return FeedbackLensError(f"The ONNX encoder backend needs the {package} package, which is not installed.",
                             fix="Run `pip install onnxruntime onnx onnxscript`, or use the default backend (torch).")


def export_int8(model_path: str, out: Path) -> Path:
    """Export the transformer of the sentence-transformers model at ``model_path`` to ONNX and quantise it.

    The graph takes ``input_ids`` and ``attention_mask`` (int64, [batch, tokens]) and returns the
    token states; pooling happens outside, so sentence and span vectors both come from it.
    Written to a temporary name and renamed: a crash never leaves a half-written model.
    """
    import logging
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise _missing(err.name or "onnxruntime") from None

    class _TokenStates(torch.nn.Module):
        """Keyword arguments in, token states out: the exporter passes positional inputs."""

        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

    st = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    example = st.tokenizer(["an example", "a slightly longer example text"], padding=True, return_tensors="pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    fp32 = out.with_name(f".tmp-{os.getpid()}-fp32.onnx")
    int8 = out.with_name(f".tmp-{os.getpid()}-int8.onnx")
    root = logging.getLogger()
    level = root.level
    # The exporter's tracer warnings and the quantiser's advice are for model authors, not our users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            torch.onnx.export(_TokenStates(st[0].auto_model).eval(), (example["input_ids"], example["attention_mask"]),
                              str(fp32), input_names=["input_ids", "attention_mask"], output_names=["token_states"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"},
                                            "token_states": {0: "batch", 1: "tokens"}},
                              opset_version=17, dynamo=False)
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"],
                             # The exporter leaves some MatMul outputs untyped; they are all float.
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            os.replace(int8, out)
        finally:
            root.setLevel(level)
            fp32.unlink(missing_ok=True)
            int8.unlink(missing_ok=True)
    return out


def _export_key(model_path: str) -> str:
    """Changes when the model files or the exporting libraries change."""
    h = hashlib.sha256()
    for f in sorted(Path(model_path).rglob("*")):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".txt"}:
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
    for package in ("torch", "transformers", "onnxruntime"):
        try:
            h.update(md.version(package).encode())
        except md.PackageNotFoundError:
            pass
    return h.hexdigest()[:12]


class OnnxInt8Encoder:
    """A sentence-transformers model run by ONNX Runtime with int8 MatMul weights (see the module notes).

    Args:
        model: model name or folder, as for the PyTorch encoder.
        models_dir: where the exported model is kept (made on first use, about 10 s).
        batch_size: messages per batch (length-sorted, so padding stays small).
        threads: ONNX Runtime's threads; None = one per core.
    """

    span_method = SPAN_METHOD
    mean_pooled = True  # encode() mean-pools the token states itself

    def __init__(self, model: str = DEFAULT_ENCODER, models_dir: Path = Path("store/cache/models"),
                 batch_size: int = 64, threads: int | None = None) -> None:
        enforce_offline()
        try:
            import onnxruntime as ort
        except ImportError:
            raise _missing("onnxruntime") from None
        from transformers import AutoTokenizer

        path = resolve_model_path(model)
        if not Path(path).is_dir():
            raise FeedbackLensError(f'The ONNX backend needs the encoder "{model}" as a folder on disk.',
                                    fix="Pass the model folder with --encoder, or use the default encoder.")
        self.name = model  # the same vector space: heads trained on the PyTorch vectors read these
        self.cache_name = f"{model}+{BACKEND}"  # ... but the cache keeps them apart
        self.batch_size = batch_size
        self.batch_rows = batch_size  # encode() embeds the length-sorted texts in batches of this many
        self.backend = BACKEND
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_")
        file = Path(models_dir) / f"{slug}-{BACKEND}-{_export_key(path)}.onnx"
        if not file.exists():
            export_int8(path, file)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        self._session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        self.max_length = min(256, int(self.tokenizer.model_max_length))  # as sentence-transformers reads MiniLM
        config = Path(path) / "sentence_bert_config.json"
        if config.exists():
            import json

            self.max_length = int(json.loads(config.read_text()).get("max_seq_length", self.max_length))
        self.dimension = int(self._session.get_outputs()[0].shape[-1] or self._probe_dimension())

    def _probe_dimension(self) -> int:
        return int(self.token_states(np.array([[101, 102]]), np.array([[1, 1]])).shape[-1])

    def token_states(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Output states of every token (see ``pipelines.embed.TokenStates``)."""
        return self._session.run(None, {"input_ids": input_ids.astype(np.int64),
                                        "attention_mask": mask.astype(np.int64)})[0]

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors, embedded in length-sorted batches."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="np")
            mask = batch["attention_mask"].astype(np.int64)
            states = self.token_states(batch["input_ids"], mask)
            weights = mask[..., None].astype(np.float32)
            vectors = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[idx] = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            if progress:
                progress(len(idx))
        return out

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                     progress: Progress | None = None) -> np.ndarray:
        """Span vectors in context, as :meth:`encode_with_spans` makes them; ``progress`` counts spans."""
        return self.encode_with_spans(texts, spans, progress, unit="spans")[1]

    def encode_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                          progress: Progress | None = None, unit: str = "messages") -> tuple[np.ndarray, np.ndarray]:
        """Message vectors (those of :meth:`encode`: the same batches) and their spans' vectors from the same
        pass (``encode_in_context``, batch by batch, since int8 activations are quantised per batch)."""
        run = window_runner(self.tokenizer, self.token_states, self.batch_size)
        first = np.cumsum([0, *(len(sp) for sp in spans)])
        messages = np.empty((len(texts), self.dimension), dtype=np.float32)
        out = np.empty((int(first[-1]), self.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            m, v = encode_in_context(self.tokenizer, run, self.dimension, self.max_length, [texts[i] for i in idx],
                                     [spans[i] for i in idx])
            messages[idx] = m
            out[np.concatenate([np.arange(first[i], first[i + 1]) for i in idx])] = v
            if progress:
                progress(len(idx) if unit == "messages" else int(sum(len(spans[i]) for i in idx)))
        return messages, out
