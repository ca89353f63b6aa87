"""Shared fixtures: small real data, the real packaged encoder, and a real analysed run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "fine_food_reviews.csv"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    """The bundled sample (real reviews, synthetic dates)."""
    return pd.read_csv(SAMPLE)


@pytest.fixture(scope="session")
def small_sample_csv(tmp_path_factory, sample_frame) -> Path:
    """Every 12th sample review (about 400, spread over the whole year) as a CSV file."""
    path = tmp_path_factory.mktemp("data") / "small_reviews.csv"
    sample_frame.iloc[::12].to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def encoder():
    """The real packaged all-MiniLM-L6-v2, loaded once per test session, in fp32.

    fp32, not the default bf16: bf16 kernels differ between CPUs (Intel AMX, AMD AVX-512 BF16), and on the
    400-review run the small differences move UMAP and HDBSCAN enough that which topics form (and so whether
    the planted surge shows as an emerging issue) depended on the machine CI drew. tests/test_encoders.py
    checks that bf16 gives the same vectors for every purpose.
    """
    from pipelines.embed import SentenceTransformerEncoder

    return SentenceTransformerEncoder(precision="fp32")


@pytest.fixture(scope="session")
def real_run_store(tmp_path_factory, small_sample_csv, encoder) -> Path:
    """A store holding one real run of the small sample: real embeddings, BERTopic, sentiment."""
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping, Settings

    store = tmp_path_factory.mktemp("store")
    settings = Settings(store_dir=store)
    analyse_file(small_sample_csv, ColumnMapping(metadata=("rating",)), settings, encoder=encoder,
                 note="Test run: real reviews, synthetic dates.")
    return store
