"""Read a feedback file (CSV, TSV, JSON, JSON Lines, Parquet, Excel) into a table of raw records.

Owns: decoding, format parsing, the column mapping and its auto-detection, and turning every
problem with the file into an :class:`InputError` that names the file, row and column and says
how to fix it. It does not clean text or parse dates (that is ``clean``).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.errors import InputError
from pipelines.settings import ColumnMapping

SUPPORTED_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
}
SUPPORTED_LIST = "CSV (.csv), TSV (.tsv), JSON (.json), JSON Lines (.jsonl), Parquet (.parquet), Excel (.xlsx)"

# Common names, most specific first; compared after lower-casing and dropping non-letters.
TEXT_NAMES = (
    "text", "message", "messagetext", "review", "reviewtext", "reviewbody", "comment", "comments",
    "body", "feedback", "feedbacktext", "content", "verbatim", "narrative", "complaint",
    "consumercomplaintnarrative", "description", "response", "answer", "note", "notes",
)
DATE_NAMES = (
    "date", "createdat", "created", "timestamp", "datetime", "time", "submittedat", "submitted",
    "datereceived", "receivedat", "reviewdate", "postedat", "posted", "createddate", "updatedat",
    "reviewtime", "publishedat", "sentat",
)
ID_NAMES = (
    "id", "messageid", "reviewid", "ticketid", "complaintid", "feedbackid", "responseid",
    "commentid", "snippetid", "sentenceid", "caseid", "uuid",
)

# A single field larger than this is almost certainly a broken file (an unclosed quote).
MAX_FIELD_BYTES = 5_000_000


@dataclass
class RawTable:
    """Records read from one file, before cleaning.

    ``frame`` holds one row per record with the original column names plus ``_row``: where the
    record is in the file, counted the way a person would look it up (``row_label``).
    """

    path: Path
    format: str
    frame: pd.DataFrame
    row_label: str  # "line" (text formats), "row" (spreadsheets, Parquet) or "record" (JSON)
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The file's own columns, in file order."""
        return [c for c in self.frame.columns if c != "_row"]

    def where(self, row: int, column: str | None = None) -> str:
        """'reviews.csv, line 7, column "date"': a place a user can find."""
        place = f"{self.path.name}, {self.row_label} {row}"
        return f'{place}, column "{column}"' if column else place


@dataclass(frozen=True)
class ResolvedColumns:
    """The columns a run uses, after applying options and auto-detection."""

    text: str
    date: str | None
    id: str | None
    metadata: tuple[str, ...]
    detected: tuple[str, ...] = ()  # which of text/date/id were auto-detected

    def describe(self) -> str:
        """One line for the run summary."""
        parts = [f'text="{self.text}"', f'date="{self.date}"' if self.date else "date=none",
                 f'id="{self.id}"' if self.id else "id=none"]
        meta = ", ".join(f'"{m}"' for m in self.metadata) or "none"
        note = f" (auto-detected: {', '.join(self.detected)})" if self.detected else ""
        return " ".join(parts) + f" metadata={meta}{note}"


def detect_format(path: Path) -> str:
    """The format of ``path`` from its extension, or an InputError listing the supported ones."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_FORMATS:
        shown = suffix or "no extension"
        raise InputError(
            f"{path.name}: unknown file format ({shown}).",
            fix=f"Save the file as one of: {SUPPORTED_LIST}, with the matching extension.",
        )
    return SUPPORTED_FORMATS[suffix]


def read_feedback_file(path: str | Path) -> RawTable:
    """Read any supported feedback file into a :class:`RawTable`.

    Raises:
        InputError: the file is missing, empty, of an unknown format, or malformed; the message
            names the place and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found.", fix="Check the path; it is read relative to the current folder.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file.", fix="Give the path of one feedback file.")
    fmt = detect_format(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty (0 bytes).", fix="Export the feedback again; the file has no data.")
    readers = {"csv": _read_delimited, "tsv": _read_delimited, "json": _read_json, "jsonl": _read_jsonl,
               "parquet": _read_parquet, "xlsx": _read_xlsx}
    table = readers[fmt](path, fmt)
    if table.frame.empty:
        raise InputError(f"{path.name}: the file has a header but no rows.", fix="Export the feedback again with its messages.")
    return table


# --- decoding ---------------------------------------------------------------------------------


def decode_bytes(path: Path, data: bytes) -> tuple[str, list[str]]:
    """Decode as UTF-8 (with or without BOM); otherwise fall back to Windows-1252 and say so."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        note = (
            f"{path.name}: not valid UTF-8 (first bad byte at line {line}); read it as Windows-1252 instead. "
            "Check accented letters, or save the file as UTF-8 to be sure."
        )
    try:
        return data.decode("cp1252"), [note]
    except UnicodeDecodeError:
        # Latin-1 maps every byte, so the text is never lost, only maybe mis-accented.
        return data.decode("latin-1"), [note.replace("Windows-1252", "Latin-1")]


# --- readers ----------------------------------------------------------------------------------


def _read_delimited(path: Path, fmt: str) -> RawTable:
    text, notes = decode_bytes(path, path.read_bytes())
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError(
            f"{path.name}, line {line}: contains NUL bytes, so it is not a text file.",
            fix="Check that this is the exported CSV/TSV and not a binary file renamed; export it again as UTF-8 text.",
        )
    if not text.strip():
        raise InputError(f"{path.name}: the file is empty (only blank space).", fix="Export the feedback again; the file has no data.")
    delimiter = "\t" if fmt == "tsv" else _sniff_delimiter(text)
    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    starts: list[int] = []
    try:
        header = next(reader)
        next_start = reader.line_num + 1
        for record in reader:
            start = next_start
            next_start = reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue  # blank line between records
            rows.append(record)
            starts.append(start)
    except csv.Error as err:
        line = next_start if rows or reader.line_num > 1 else 1
        msg = str(err)
        if "field larger than field limit" in msg:
            raise InputError(
                f"{path.name}, line {line}: a field is larger than {MAX_FIELD_BYTES // 1_000_000} MB, "
                "which usually means a quote (\") opens a field and never closes.",
                fix="Find the unbalanced quote near that line and close it, or export the file again.",
            ) from None
        if "unexpected end of data" in msg or "EOF" in msg:
            raise InputError(
                f"{path.name}, line {line}: a quoted field starts here and is never closed.",
                fix='Close the quote (") at the end of that field, or export the file again.',
            ) from None
        raise InputError(
            f"{path.name}, line {line}: cannot be read as {fmt.upper()} ({msg}).",
            fix='Fields that contain the delimiter or line breaks must be wrapped in double quotes ("...").',
        ) from None
    header = [h.strip() for h in header]
    _check_header(path, header)
    width = len(header)
    ragged = [(s, len(r)) for s, r in zip(starts, rows, strict=True) if len(r) != width]
    if ragged:
        first = ", ".join(f"line {s} has {n}" for s, n in ragged[:3])
        more = f" (and {len(ragged) - 3} more)" if len(ragged) > 3 else ""
        raise InputError(
            f"{path.name}: {len(ragged)} row(s) do not have {width} fields like the header: {first}{more}.",
            fix='Wrap fields that contain the delimiter in double quotes ("..."), or remove the extra fields.',
        )
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame["_row"] = starts
    return RawTable(path, fmt, frame, "line", notes)


def _sniff_delimiter(text: str) -> str:
    head = text[:65536].split("\n", 1)[0]
    counts = {d: head.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _check_header(path: Path, header: list[str]) -> None:
    if not any(header):
        raise InputError(f"{path.name}, line 1: the header row is empty.", fix="Put the column names in the first row.")
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if not name:
            raise InputError(f"{path.name}, line 1: column {i} has no name.", fix="Give every column a name in the header row.")
        if name in seen:
            raise InputError(f'{path.name}, line 1: the column name "{name}" appears twice.', fix="Give each column a unique name.")
        seen.add(name)


def _records_frame(path: Path, fmt: str, records: list, positions: list[int], label: str, notes: list[str]) -> RawTable:
    for rec, pos in zip(records, positions, strict=True):
        if not isinstance(rec, dict):
            kind = type(rec).__name__.replace("str", "text").replace("list", "list").replace("NoneType", "null")
            raise InputError(
                f"{path.name}, {label} {pos}: expected an object with named fields, found {kind}.",
                fix='Write each message as an object, e.g. {"text": "...", "date": "2024-05-01"}.',
            )
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = frame.astype(object).where(frame.notna(), None) if not frame.empty else frame
    frame.columns = [str(c) for c in frame.columns]
    frame["_row"] = positions
    return RawTable(path, fmt, frame, label, notes)


def _read_json(path: Path, fmt: str) -> RawTable:
    text, notes = decode_bytes(path, path.read_bytes())
    if not text.strip():
        raise InputError(f"{path.name}: the file is empty (only blank space).", fix="Export the feedback again; the file has no data.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and "\n{" in text.strip():
            raise InputError(
                f"{path.name}, line {err.lineno}: holds one JSON object per line, which is JSON Lines.",
                fix="Rename the file to .jsonl.",
            ) from None
        raise InputError(
            f"{path.name}, line {err.lineno}, character {err.colno}: not valid JSON ({err.msg}).",
            fix="Fix the JSON at that place (a missing comma, quote or bracket is the usual cause).",
        ) from None
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(
                f"{path.name}: expected a list of messages, or an object with one list in it; "
                f"found an object with keys {', '.join(map(repr, list(data)[:8]))}.",
                fix='Write the messages as a list: [{"text": "..."}, ...].',
            )
        data = data[lists[0]]
    if not isinstance(data, list):
        raise InputError(f"{path.name}: expected a list of messages, found a single value.",
                         fix='Write the messages as a list: [{"text": "..."}, ...].')
    return _records_frame(path, fmt, data, list(range(1, len(data) + 1)), "record", notes)


def _read_jsonl(path: Path, fmt: str) -> RawTable:
    text, notes = decode_bytes(path, path.read_bytes())
    records, positions = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path.name}, line {lineno}, character {err.colno}: not valid JSON ({err.msg}).",
                fix="Each line must be one complete JSON object; fix or remove that line.",
            ) from None
        positions.append(lineno)
    if not records:
        raise InputError(f"{path.name}: the file is empty (no JSON lines).", fix="Export the feedback again; the file has no data.")
    return _records_frame(path, fmt, records, positions, "line", notes)


def _read_parquet(path: Path, fmt: str) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for a corrupt file
        raise InputError(
            f"{path.name}: cannot be read as Parquet ({type(err).__name__}: {str(err).splitlines()[0][:200]}).",
            fix="Check that the file is a complete Parquet file; export it again.",
        ) from None
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    notes = []
    for col in [c for c in frame.columns if frame[c].dtype == "object"]:
        # Binary and nested cells (bytes, lists, structs) become text here, so that later stages see text.
        cells = frame[col]
        binary = cells.map(lambda v: isinstance(v, bytes | bytearray))
        if binary.any():
            text = cells[binary].map(lambda v: bytes(v).decode("utf-8", errors="replace"))
            if text.str.contains("\ufffd", regex=False).any():
                notes.append(f'Column "{col}" holds bytes that are not UTF-8 text; unreadable bytes were replaced.')
            frame[col] = cells.where(~binary, text)
        nested = frame[col].map(lambda v: isinstance(v, list | dict | tuple | np.ndarray))
        if nested.any():
            frame[col] = frame[col].where(~nested, frame[col][nested].map(str))
    frame["_row"] = range(1, len(frame) + 1)
    return RawTable(path, fmt, frame, "row", notes)


def _read_xlsx(path: Path, fmt: str) -> RawTable:
    try:
        frame = pd.read_excel(path, sheet_name=0, engine="openpyxl", dtype=object)
    except Exception as err:  # openpyxl raises zipfile / xml / key errors for broken files
        raise InputError(
            f"{path.name}: cannot be read as an Excel workbook ({type(err).__name__}).",
            fix="Open it in Excel or LibreOffice and save it again as .xlsx.",
        ) from None
    frame = frame.dropna(how="all")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    frame = frame.drop(columns=[c for c in unnamed if frame[c].isna().all()])
    frame.columns = [str(c) for c in frame.columns]
    # Spreadsheet row numbers: the header is row 1.
    frame["_row"] = [int(i) + 2 for i in frame.index]
    frame = frame.reset_index(drop=True)
    return RawTable(path, fmt, frame, "row", [])


# --- column mapping ---------------------------------------------------------------------------


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _find(columns: Iterable[str], names: tuple[str, ...]) -> str | None:
    by_key = {_key(c): c for c in columns}
    for n in names:
        if n in by_key:
            return by_key[n]
    return None


def _require(table: RawTable, option: str, name: str) -> str:
    if name in table.columns:
        return name
    exact = {c.lower(): c for c in table.columns}
    if name.lower() in exact:
        return exact[name.lower()]
    close = difflib.get_close_matches(name, table.columns, n=1, cutoff=0.5)
    hint = f'Did you mean "{close[0]}"? ' if close else ""
    raise InputError(
        f'{table.path.name}: there is no column "{name}" (asked for by --{option}). '
        f"The columns are: {', '.join(repr(c) for c in table.columns)}.",
        fix=f"{hint}Pass --{option} with one of those names.",
    )


def resolve_columns(table: RawTable, mapping: ColumnMapping) -> ResolvedColumns:
    """Apply the user's mapping, detect the rest from common names, or explain what is missing."""
    detected: list[str] = []
    if mapping.text:
        text = _require(table, "text", mapping.text)
    else:
        text = _find(table.columns, TEXT_NAMES)
        if text is None:
            close = difflib.get_close_matches("text", table.columns, n=1, cutoff=0.4)
            longest = longest_text_column(table)
            hint = longest or (close[0] if close else None)
            raise InputError(
                f"{table.path.name}: no message text column found. "
                f"The columns are: {', '.join(repr(c) for c in table.columns)}.",
                fix=(f'Pass --text "{hint}" if that column holds the messages' if hint else "Pass --text COLUMN")
                + " (or name the column text, message, review, comment or body).",
            )
        detected.append("text")
    date = _require(table, "date", mapping.date) if mapping.date else _find(table.columns, DATE_NAMES)
    if date and not mapping.date:
        detected.append("date")
    id_ = _require(table, "id", mapping.id) if mapping.id else _find(table.columns, ID_NAMES)
    if id_ and not mapping.id:
        detected.append("id")
    used = {text, date, id_}
    if mapping.metadata is not None:
        metadata = tuple(_require(table, "meta", m) for m in mapping.metadata)
    else:
        metadata = tuple(c for c in table.columns if c not in used)
    return ResolvedColumns(text, date, id_, metadata, tuple(detected))


def longest_text_column(table: RawTable) -> str | None:
    """The column with the longest texts on average (at least 20 characters), a good guess for the messages."""
    best, best_len = None, 0.0
    for c in table.columns:
        values = table.frame[c].dropna().head(200)
        if values.empty or not all(isinstance(v, str) for v in values):
            continue
        mean_len = values.str.len().mean()
        if mean_len > best_len:
            best, best_len = c, mean_len
    return best if best_len >= 20 else None
