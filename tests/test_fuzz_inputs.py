"""Generated bad input (Hypothesis): every malformed file either analyses or stops with a clear error.

For each format (CSV, TSV, JSON, JSON Lines, Parquet, Excel) 1,000 generated files go through
everything a run does before the model (read, map columns, clean, redact) and the Parquet write
the store does with the result. The property: the file either gives clean messages that the
store can write, or a :class:`FeedbackLensError` that names the file and says how to fix it.
Anything else (a ``KeyError`` from deep in pandas, a ``UnicodeError``) would reach the user as a
traceback, and fails the test. A smaller set per format goes through the whole analysis with the
real model and BERTopic, checking that no partial run is ever published.

The examples are derandomized: CI sees the same 6,000+ files on every run; a failure prints the
file that broke it.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.clean import clean_messages
from pipelines.errors import FeedbackLensError
from pipelines.ingest import read_feedback_file, resolve_columns
from pipelines.redact import redact_messages
from pipelines.settings import ColumnMapping, Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 1000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# Things real exports contain that break naive readers.
NASTY = [
    "", " ", "\x00", "a\x00b", "\ufeffBOM inside", "😀🔥👍🏽", "مرحبا بالعالم", "\u202eevil right-to-left", "שלום",
    '"never closed', 'quote " in the middle', "line\nbreak", "carriage\rreturn", "tab\there", "comma, inside",
    "semi;colon", "<script>alert(1)</script>", "=HYPERLINK(\"http://x\")", "NaN", "null", "None", "-", "XXXX",
    "0000-01-01", "9999-12-31", "0001-01-01T00:00:00Z", "2024-02-30", "31/12/2024", "12/31/2024 11:59 PM",
    "1970-01-01T00:00:00+14:00", "yesterday", "1e308", "-0", "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
]
COLUMN_NAMES = ["text", "review", "message", "date", "created_at", "id", "rating", "channel", "", " ", "text", "Text ",
                "😀", "a,b", 'q"uote', "\x00"]
MAPPINGS = [
    ColumnMapping(),
    ColumnMapping(text="text", date="date", id="id", metadata=("rating", "channel")),
    ColumnMapping(text="review", metadata=("channel",)),
    ColumnMapping(text="missing_column"),
    ColumnMapping(text="text", date="text"),
]

long_field = st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=4), st.integers(2_000, 300_000))
words = st.lists(st.sampled_from(["late", "refund", "great", "broken", "box", "taste", "staff", "app", "slow"]),
                 min_size=1, max_size=12).map(" ".join)
text_cell = st.one_of(words, st.sampled_from(NASTY), st.text(max_size=40), long_field,
                      st.binary(max_size=30).map(lambda b: b.decode("latin-1")))
cell = st.one_of(text_cell, st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.none())
header = st.lists(st.sampled_from(COLUMN_NAMES) | st.text(max_size=8), min_size=0, max_size=6)
rows = st.lists(st.lists(cell, max_size=7), max_size=40)
codec = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252", "utf-32"])


def _mutate(data: bytes, how: int, seed: int) -> bytes:
    """Damage a file's bytes the ways transfers and tools do: cut it, sprinkle NULs, prepend junk."""
    rnd = random.Random(seed)
    if how == 1 and data:
        return data[: rnd.randrange(len(data))]
    if how == 2 and data:
        pos = [rnd.randrange(len(data)) for _ in range(3)]
        for p in sorted(pos, reverse=True):
            data = data[:p] + b"\x00" + data[p:]
        return data
    if how == 3:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64))) + data
    if how == 4:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300)))
    return data


@st.composite
def delimited_files(draw, delimiter: str) -> bytes:
    head = draw(header)
    body = draw(rows)
    if draw(st.booleans()):  # a proper writer: quoting right, rows ragged
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter)
        if head:
            writer.writerow(head)
        writer.writerows([["" if c is None else c for c in r] for r in body])
        text = out.getvalue()
    else:  # a hand-made export: naive joins, stray quotes
        lines = [delimiter.join(map(str, head))] + [delimiter.join(map(str, r)) for r in body]
        text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    data = text.encode(draw(codec), errors="replace")
    return _mutate(data, draw(st.integers(0, 6)), draw(st.integers(0, 10**6)))


json_value = st.recursive(cell, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                          max_leaves=12)
record = st.dictionaries(st.sampled_from(COLUMN_NAMES) | st.text(max_size=6), cell | json_value, max_size=6)


@st.composite
def json_files(draw) -> bytes:
    shape = draw(st.integers(0, 3))
    records = draw(st.lists(record | json_value, max_size=40))
    if shape == 0:
        doc = records
    elif shape == 1:
        doc = {draw(st.sampled_from(["data", "records", "items", "x"])): records}
    elif shape == 2:
        doc = draw(json_value)
    else:
        doc = {"text": [r.get("text") if isinstance(r, dict) else r for r in records]}
    data = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True).encode(draw(codec), errors="replace")
    return _mutate(data, draw(st.integers(0, 6)), draw(st.integers(0, 10**6)))


@st.composite
def jsonl_files(draw) -> bytes:
    lines = draw(st.lists(st.one_of(record.map(json.dumps), json_value.map(json.dumps), st.text(max_size=20)),
                          max_size=40))
    data = "\n".join(lines).encode(draw(codec), errors="replace")
    return _mutate(data, draw(st.integers(0, 6)), draw(st.integers(0, 10**6)))


@st.composite
def frames(draw) -> pd.DataFrame:
    """A table with columns of any type (text, numbers, bytes, dates, nulls, mixed objects)."""
    n = draw(st.integers(0, 40))
    names = draw(st.lists(st.sampled_from(COLUMN_NAMES[:9]) | st.text(min_size=1, max_size=8), max_size=5, unique=True))
    data = {}
    for name in names:
        kind = draw(st.sampled_from(["ints", "floats", "bools", "dates", "nulls", "bytes", "text", "mixed"]))
        if kind == "ints":
            data[name] = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
        elif kind == "floats":
            data[name] = draw(st.lists(st.floats(), min_size=n, max_size=n))
        elif kind == "bools":
            data[name] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        elif kind == "dates":
            data[name] = pd.to_datetime(draw(st.lists(st.datetimes(), min_size=n, max_size=n)), errors="coerce")
        elif kind == "nulls":
            data[name] = [None] * n
        elif kind == "bytes":
            data[name] = draw(st.lists(st.binary(max_size=20), min_size=n, max_size=n))
        elif kind == "text":
            data[name] = draw(st.lists(st.one_of(words, st.sampled_from(NASTY)), min_size=n, max_size=n))
        else:
            data[name] = [str(v) if isinstance(v, (list, dict)) else v
                          for v in draw(st.lists(st.one_of(text_cell, st.integers(-1000, 1000), st.floats(), st.none()),
                                                 min_size=n, max_size=n))]
    return pd.DataFrame(data, index=range(n))


@st.composite
def parquet_files(draw) -> bytes:
    frame = draw(frames())
    out = io.BytesIO()
    try:
        frame.to_parquet(out, index=False)
    except Exception:  # a table pyarrow itself cannot store (mixed objects): such a file cannot exist
        frame = frame.map(lambda v: v if v is None else v.decode("latin-1") if isinstance(v, bytes) else str(v))
        out = io.BytesIO()
        frame.to_parquet(out, index=False)
    return _mutate(out.getvalue(), draw(st.sampled_from([0, 0, 0, 0, 1, 2, 3, 4])), draw(st.integers(0, 10**6)))


def _excel_safe(value):
    """openpyxl refuses control characters in cells; Excel files cannot hold them either."""
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        return ILLEGAL_CHARACTERS_RE.sub("", value)[:32_000]
    if isinstance(value, int) and abs(value) > 2**53:
        return float(value)
    return value


@st.composite
def xlsx_files(draw) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    head = draw(header)
    if head:
        sheet.append([_excel_safe(h) for h in head])
    for r in draw(st.lists(st.lists(cell, max_size=6), max_size=30)):
        sheet.append([_excel_safe(c) for c in r])
    if draw(st.booleans()):  # an empty first sheet with the data on the second
        book.create_sheet("Data")
    out = io.BytesIO()
    book.save(out)
    return _mutate(out.getvalue(), draw(st.sampled_from([0, 0, 0, 0, 1, 2, 3, 4])), draw(st.integers(0, 10**6)))


def check_file(tmp: Path, suffix: str, data: bytes, mapping: ColumnMapping, on_bad_date: str) -> None:
    """The property: clean messages the store can write, or a clear error that names the file and a fix."""
    path = tmp / f"feedback{suffix}"
    path.write_bytes(data)
    try:
        table = read_feedback_file(path)
        columns = resolve_columns(table, mapping)
        messages, report = clean_messages(table, columns, Settings(on_bad_date=on_bad_date))
        metadata = [c for c in columns.metadata if c in messages.columns]
        messages, _ = redact_messages(messages, metadata)
    except FeedbackLensError as err:
        assert path.name in str(err), f"the error does not name the file: {err}"
        assert err.fix, f"the error says no fix: {err}"
        assert "Traceback" not in str(err)
        return
    assert messages["text"].map(lambda t: isinstance(t, str) and t.strip() != "" and "\x00" not in t).all()
    assert messages["message_id"].is_unique
    if "date" in messages and messages["date"].notna().any():
        assert str(messages["date"].dtype).startswith("datetime64") and "UTC" in str(messages["date"].dtype)
    messages.to_parquet(io.BytesIO(), index=False)  # what the store will write


FORMATS = {
    ".csv": delimited_files(","),
    ".tsv": delimited_files("\t"),
    ".json": json_files(),
    ".jsonl": jsonl_files(),
    ".parquet": parquet_files(),
    ".xlsx": xlsx_files(),
}


@pytest.mark.parametrize("suffix", list(FORMATS))
def test_malformed_files_read_or_fail_clearly(suffix, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    seen = {"examples": 0}

    @FUZZ
    @given(data=FORMATS[suffix], mapping=st.sampled_from(MAPPINGS), on_bad_date=st.sampled_from(["fail", "drop"]))
    def run(data, mapping, on_bad_date):
        seen["examples"] += 1
        check_file(tmp, suffix, data, mapping, on_bad_date)

    run()
    assert seen["examples"] >= EXAMPLES


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    kind = path.suffix
    if kind in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="," if kind == ".csv" else "\t")
    elif kind == ".json":
        frame.to_json(path, orient="records", force_ascii=False)
    elif kind == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif kind == ".parquet":
        frame.astype("string").to_parquet(path, index=False)
    else:
        frame.map(_excel_safe).to_excel(path, index=False)


@pytest.mark.parametrize("suffix", list(FORMATS))
def test_generated_files_through_the_whole_analysis_publish_whole_runs_or_none(suffix, encoder, sample_frame,
                                                                               tmp_path_factory):
    """Real files with nasty cells (NULs, RTL, emoji, huge fields, year-0 dates, wrong types) through the real model."""
    from pipelines.analyse import analyse_file
    from pipelines.store import list_runs, load_run, runs_dir

    tmp = tmp_path_factory.mktemp("whole")
    reviews = sample_frame["text"].tolist()
    outcomes = {"run": 0, "error": 0}

    @settings(max_examples=6, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(n=st.integers(25, 45), nasty_text=st.lists(text_cell, min_size=45, max_size=45),
           dates=st.lists(st.dates(date(2015, 1, 1), date(2026, 10, 1)).map(str), min_size=45, max_size=45),
           bad_dates=st.lists(st.tuples(st.integers(0, 44), st.sampled_from(NASTY[-14:]) | st.none()), max_size=3),
           ratings=st.lists(cell, min_size=45, max_size=45), start=st.integers(0, 4000),
           on_bad_date=st.sampled_from(["fail", "drop"]))
    def run(n, nasty_text, dates, bad_dates, ratings, start, on_bad_date):
        for i, value in bad_dates:
            dates[i] = value
        frame = pd.DataFrame({
            "text": [f"{reviews[start + i]} {nasty_text[i] if i % 3 == 0 else ''}" for i in range(n)],
            "date": dates[:n],
            "rating": [str(r) for r in ratings[:n]],
        })
        path = tmp / f"feedback{suffix}"
        _write_frame(frame, path)
        store = tmp / f"store-{len(list(tmp.iterdir()))}"
        try:
            summary = analyse_file(path, ColumnMapping(metadata=("rating",)),
                                   Settings(store_dir=store, on_bad_date=on_bad_date), encoder=encoder)
        except FeedbackLensError as err:
            assert path.name in str(err) or "Not enough messages" in str(err), str(err)
            assert err.fix
            assert list_runs(store) == [] and not (runs_dir(store).exists() and any(runs_dir(store).iterdir()))
            outcomes["error"] += 1
            return
        outcomes["run"] += 1
        run_ = load_run(store)
        assert len(run_.messages) == summary.messages >= 30
        assert run_.messages["text"].map(lambda t: "\x00" not in t).all()

    run()
    assert outcomes["run"] >= 1 and outcomes["error"] >= 1, outcomes  # both outcomes were exercised


# --- configuration files ---------------------------------------------------------------------------

AREAS = (ROOT / "data" / "expectation_areas.yaml").read_text("utf-8")


def _damage_text(text: str, seed: int, how: int) -> bytes:
    """Typical hand-editing mistakes in a YAML/JSON file: a cut, a lost colon, a bad indent, a tab, junk."""
    rnd = random.Random(seed)
    lines = text.splitlines()
    if not lines:
        return text.encode()
    i = rnd.randrange(len(lines))
    if how == 0:
        lines = lines[: i]
    elif how == 1:
        lines[i] = lines[i].replace(":", "", 1)
    elif how == 2:
        lines[i] = "   " + lines[i]
    elif how == 3:
        lines[i] = "\t" + lines[i].lstrip()
    elif how == 4:
        lines[i] = lines[i].replace("'", "").replace('"', "'", 1)
    elif how == 5:
        lines.insert(i, rnd.choice(["- {", "key: [1, 2", "&a *b", "!!python/object:os.system ls", "? ? ?", "threshold: 7"]))
    elif how == 6:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
    return "\n".join(lines).encode("utf-8")


config_bytes = st.builds(_damage_text, st.sampled_from([AREAS]), st.integers(0, 10**6), st.integers(0, 7))
any_yaml = st.one_of(config_bytes, json_value.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200),
                     st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))


@FUZZ
@given(data=any_yaml)
def test_malformed_taxonomy_files_fail_clearly(data, tmp_path_factory):
    from pipelines.expectations import load_taxonomy

    path = tmp_path_factory.mktemp("areas") / "areas.yaml"
    path.write_bytes(data)
    try:
        taxonomy = load_taxonomy(path)
    except FeedbackLensError as err:
        assert "areas.yaml" in str(err) and err.fix, str(err)
        return
    assert taxonomy.keys and len(set(taxonomy.keys)) == len(taxonomy.keys)


MAPPING_TEXT = "text: review_body\ndate: created_at\nid: review_id\nmetadata: [channel, rating]\non_bad_date: drop\n"


@FUZZ
@given(data=st.one_of(st.builds(_damage_text, st.just(MAPPING_TEXT), st.integers(0, 10**6), st.integers(0, 7)), any_yaml))
def test_malformed_mapping_files_fail_clearly(data, tmp_path_factory):
    from pipelines.cli import _parser, _settings, load_mapping_file

    path = tmp_path_factory.mktemp("mapping") / "mapping.yaml"
    path.write_bytes(data)
    try:
        mapping = load_mapping_file(path)
        _settings(_parser().parse_args(["analyse", "x.csv"]), mapping)
    except FeedbackLensError as err:
        assert "mapping.yaml" in str(err) and err.fix, str(err)


USERS_TEXT = json.dumps({"users": {"ana": {"role": "analyst", "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$x$y",
                                           "created_at": "2026-01-01T00:00:00Z"}}}, indent=1)


@FUZZ
@given(data=st.one_of(st.builds(_damage_text, st.just(USERS_TEXT), st.integers(0, 10**6), st.integers(0, 7)),
                      json_value.map(lambda v: json.dumps({"users": v}).encode()), any_yaml))
def test_malformed_users_files_fail_clearly(data, tmp_path_factory):
    from pipelines.auth import Users

    path = tmp_path_factory.mktemp("users") / "users.json"
    path.write_bytes(data)
    try:
        Users(path).records()
        Users(path).user("ana")
    except FeedbackLensError as err:
        assert "users.json" in str(err) and err.fix, str(err)
