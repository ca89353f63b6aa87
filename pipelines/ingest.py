"""Read a feedback file (CSV, TSV, JSON, JSON Lines, Parquet, Excel) into a table of raw records.

Owns: decoding, format parsing, the column mapping and its auto-detection, and turning every
problem with the file into an :class:`InputError` that names the file, row and column and says
how to fix it. It does not clean text or parse dates (that is ``clean``, which also says whether a column's values
are dates, for a file whose column names do not say which is the date).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.errors import InputError
from pipelines.settings import ColumnMapping

if TYPE_CHECKING:
    import pyarrow as pa

SUPPORTED_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
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
    # Other languages' exports (German, French, Spanish, Italian, Dutch).
    "nachricht", "kommentar", "beschwerdetext", "beschwerde", "ruckmeldung", "commentaire", "avis", "comentario",
    "mensaje", "commento", "messaggio", "opmerking",
)
DATE_NAMES = (
    "date", "createdat", "created", "timestamp", "datetime", "time", "submittedat", "submitted",
    "datereceived", "receivedat", "reviewdate", "postedat", "posted", "createddate", "updatedat",
    "reviewtime", "publishedat", "sentat",
    # Other languages' exports (German, French, Spanish, Italian, Dutch, Portuguese).
    "datum", "eingangsdatum", "erstellungsdatum", "erstelltam", "zeitstempel", "datedecreation", "datedereception",
    "fecha", "fechadecreacion", "fechaderecepcion", "datacreazione", "dataricezione", "aanmaakdatum",
    "datadecriacao",
)
# Ids of one message come before ids of what holds several (a ticket, a conversation, a case): an export with both
# a message_id and a conversation_id is keyed by the message. A repeated id counts as a newer version of a message.
ID_NAMES = (
    "id", "messageid", "msgid", "reviewid", "commentid", "responseid", "feedbackid", "surveyresponseid",
    "submissionid", "complaintid", "snippetid", "sentenceid", "entryid", "recordid", "ticketid", "ticketnumber",
    "caseid", "casenumber", "uuid", "guid",
    # Other languages' exports (German, French, Spanish, Italian, Dutch): a complaint's, a review's, a case's number.
    "beschwerdeid", "beschwerdenummer", "vorgangsnummer", "vorgangsid", "ticketnr", "fallnummer", "bewertungsid",
    "idreclamation", "numeroreclamation", "iddelavis", "idqueja", "numerodequeja", "idreclamo",
    "numeroreclamo", "klachtid", "klachtnummer",
)
"""Column names read as the message id. Not conversation_id, chat_id or thread_id: a chat export has a row per
message under one conversation id, and a repeated id counts as a newer version of one message, so all but the last
message of each conversation would be dropped. Such a column is metadata (a filter); --id still maps it."""
# How a column chosen by its name is described in messages, beside "--id" or "id in mapping.yaml".
DETECTED = "detected from its name"

# A single field larger than this is almost certainly a broken file (an unclosed quote).
MAX_FIELD_BYTES = 5_000_000


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
    # A workbook's sheet that was read, and its sheets with rows below a header (a choice to offer); else None, [].
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The file's own columns, in file order."""
        return [c for c in self.frame.columns if c != "_row"]

    def line_of(self, row: int, column: str) -> int:
        """The line ``column``'s cell is on in the record at ``row``: a CSV or TSV record's quoted cells may hold
        line breaks, so its later cells sit below the record's first line (which ``_row`` gives); else ``row``."""
        if self.format not in ("csv", "tsv") or column not in self.frame.columns:
            return row
        record = self.frame.loc[self.frame["_row"] == row]
        if record.empty:
            return row
        before = self.columns[: self.columns.index(column)]
        return row + sum(len(_LINE_BREAK.findall(str(record.iloc[0][c]))) for c in before if isinstance(record.iloc[0][c], str))

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
    date_from_values: bool = False  # the date column was found by its values, not its name
    tags: tuple[str, ...] | None = None  # metadata columns named as tags; None: found by their values

    def describe(self) -> str:
        """One line for the run summary."""
        parts = [f'text="{self.text}"', f'date="{self.date}"' if self.date else "date=none",
                 f'id="{self.id}"' if self.id else "id=none"]
        meta = ", ".join(f'"{m}"' for m in self.metadata) or "none"
        how = ["date (from its values)" if d == "date" and self.date_from_values else d for d in self.detected]
        note = f" (auto-detected: {', '.join(how)})" if how else ""
        tags = "" if self.tags is None else " tags=" + (", ".join(f'"{t}"' for t in self.tags) or "none")
        return " ".join(parts) + f" metadata={meta}{tags}{note}"


def detect_format(path: Path) -> str:
    """The format of ``path`` from its extension, or an InputError listing the supported ones."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        # Plain text has no columns: read as CSV, its first message would silently become the header.
        raise InputError(
            f"{path.name}: a .txt file is not read, because plain text has no columns (its first line would be "
            "taken as the column names and that message lost).",
            fix='Save the messages as CSV with a header row, e.g. one column named "text" and one message per row, '
            "in a .csv file. If the file already is a table with a header row (comma- or tab-separated), rename it "
            "to .csv or .tsv.",
        )
    if suffix not in SUPPORTED_FORMATS:
        shown = suffix or "no extension"
        raise InputError(
            f"{path.name}: unknown file format ({shown}).",
            fix=f"Save the file as one of: {SUPPORTED_LIST}, with the matching extension.",
        )
    return SUPPORTED_FORMATS[suffix]


def check_file(path: Path) -> str:
    """The format of the feedback file at ``path``, once it is known to be a file of a supported format.

    Raises:
        InputError: the path is missing or a folder, or its format is not supported.
    """
    if not path.exists():
        raise InputError(f"{path}: file not found.", fix="Check the path; it is read relative to the current folder.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file.", fix="Give the path of one feedback file.")
    return detect_format(path)


def read_feedback_file(path: str | Path, sheet: str | None = None) -> RawTable:
    """Read any supported feedback file into a :class:`RawTable`.

    ``sheet`` names the sheet of an Excel workbook to read (``Settings.sheet``); other formats have none and
    ignore it. Without it, a workbook's first sheet with rows is read.

    Raises:
        InputError: the file is missing, empty, of an unknown format, or malformed; the message
            names the place and the fix.
    """
    path = Path(path)
    fmt = check_file(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty (0 bytes).", fix="Export the feedback again; the file has no data.")
    readers = {"csv": _read_delimited, "tsv": _read_delimited, "json": _read_json, "jsonl": _read_jsonl,
               "parquet": _read_parquet}
    table = _read_xlsx(path, fmt, sheet) if fmt == "xlsx" else readers[fmt](path, fmt)
    if table.frame.empty:
        raise InputError(f"{path.name}: the file has a header but no rows.", fix="Export the feedback again with its messages.")
    return table


# --- decoding ---------------------------------------------------------------------------------


def decode_bytes(path: Path, data: bytes) -> tuple[str, list[str]]:
    """Decode as UTF-8 (with or without BOM) or UTF-16 (Excel's "Unicode Text"); otherwise fall back to
    Windows-1252 and say so."""
    utf16 = _utf16(data)
    if utf16 is not None:
        return utf16, []
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


def _utf16(data: bytes) -> str | None:
    """The text of a UTF-16 file: one with a byte-order mark, or one without whose NUL bytes fall as Latin letters'
    do in UTF-16 (no UTF-8 or Windows-1252 text has them). None when it is not UTF-16."""
    head = data[:4096]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    elif len(head) >= 8:
        # Latin letters in UTF-16 without a mark: a NUL in (nearly) every odd byte and no even one, or the other
        # way round; a binary file has NULs in both.
        even, odd = head[0::2].count(0) / len(head[0::2]), head[1::2].count(0) / len(head[1::2])
        if odd >= 0.7 and even <= 0.05:
            encoding = "utf-16-le"
        elif even >= 0.7 and odd <= 0.05:
            encoding = "utf-16-be"
        else:
            return None
    else:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None  # a binary file: its NUL bytes are named by the reader


# --- readers ----------------------------------------------------------------------------------


# The first bytes of files that are often renamed to .csv: what they are, and the name they should have.
_BINARY_KINDS = ((b"PK\x03\x04", "an Excel workbook (or another zip file)", ".xlsx"),
                 (b"PAR1", "a Parquet file", ".parquet"),
                 (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)", None))


def _read_delimited(path: Path, fmt: str) -> RawTable:
    data = path.read_bytes()
    for magic, kind, suffix in _BINARY_KINDS:
        if data.startswith(magic):
            raise InputError(
                f"{path.name}: this is {kind}, not {fmt.upper()} text, whatever its name says.",
                fix=f"Rename it to {path.stem}{suffix}, or export the data again as CSV." if suffix else
                "Open it in Excel or LibreOffice and save it as .xlsx (or as CSV).")
    text, notes = decode_bytes(path, data)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError(
            f"{path.name}, line {line}: contains NUL bytes, so it is not a text file.",
            fix="Check that this is the exported CSV/TSV and not a binary file renamed; export it again as UTF-8 text.",
        )
    if not text.strip():
        raise InputError(f"{path.name}: the file is empty (only blank space).", fix="Export the feedback again; the file has no data.")
    hint = _EXCEL_SEP.match(text)
    if hint:  # Excel's "sep=;" line names the delimiter; the header is the line after it
        header, rows, starts = _parse_delimited(path, text[hint.end():], fmt, hint.group(1), first_line=2)
    else:
        delimiter = "\t" if fmt == "tsv" else _sniff_delimiter(text)
        header, rows, starts = _parse_delimited(path, text, fmt, delimiter)
    rows, starts, repeated = _without_repeated_headers(header, rows, starts)
    return RawTable(path, fmt, _delimited_frame(path, header, rows, starts, 2 if hint else 1), "line",
                    notes + repeated)


def _without_repeated_headers(header: list[str], rows: list[list[str]], starts: list[int],
                              file_start: bool = True) -> tuple[list[list[str]], list[int], list[str]]:
    """Exports joined end to end (``cat january.csv february.csv``) repeat the header row inside the file: those
    lines are no messages and are skipped, with a note (the same for any part of the file, so that a file read in
    parts says what reading it whole says). At the file's start (``file_start``), a survey tool's second header
    row is skipped too."""
    notes = []
    if file_start and rows and is_survey_subheader(rows[0]):
        notes.append(SURVEY_SUBHEADER_NOTE)
        rows, starts = rows[1:], starts[1:]
    names = [h.strip() for h in header]
    # A joined file's own byte-order mark stays in the text, before its header.
    repeated = [i for i, r in enumerate(rows)
                if len(r) == len(names) and [c.replace("\ufeff", "").strip() for c in r] == names]
    if not repeated or not any(names):
        return rows, starts, notes
    drop = set(repeated)
    return ([r for i, r in enumerate(rows) if i not in drop], [s for i, s in enumerate(starts) if i not in drop],
            [*notes, "Lines that repeat the header row were skipped: the file looks like several exports joined."])


SURVEY_SUBHEADER_NOTE = ('The row below the header was skipped: it names the kind of each answer ("Open-Ended '
                         'Response"), as SurveyMonkey exports write a second header row.')


def is_survey_subheader(cells: Sequence[object]) -> bool:
    """Whether a first data row is SurveyMonkey's second header row, which names each question's kind of answer."""
    return any(isinstance(c, str) and c.strip() == "Open-Ended Response" for c in cells)


_EXCEL_SEP = re.compile(r"\A\ufeff?sep=([^\r\n])[ \t]*\r?\n", re.IGNORECASE)


def _parse_delimited(path: Path, text: str, fmt: str, delimiter: str, first_line: int = 1,
                     header: list[str] | None = None) -> tuple[list[str], list[list[str]], list[int]]:
    """The header (read from ``text`` unless given) and the records of ``text``, with the line each starts on;
    ``first_line`` is the line number of the text's first line in its file."""
    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    starts: list[int] = []
    next_start = first_line
    try:
        if header is None:
            header = next(reader)
            next_start = first_line + reader.line_num
        for record in reader:
            start = next_start
            next_start = first_line + reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue  # blank line between records
            rows.append(record)
            starts.append(start)
    except csv.Error as err:
        line = next_start if rows or reader.line_num > 1 else first_line
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
    return header, rows, starts


def _delimited_frame(path: Path, header: list[str], rows: list[list[str]], starts: list[int],
                     header_line: int = 1) -> pd.DataFrame:
    """Records as a frame of text cells with their ``_row``, once the header and every record's width are checked."""
    header = [h.strip() for h in header]
    header, rows = _without_empty_unnamed_columns(header, rows)
    _check_header(path, header, header_line)
    width = len(header)
    ragged = [(s, len(r)) for s, r in zip(starts, rows, strict=True) if len(r) != width]
    if ragged and width == 1:
        _refuse_title_lines(path, header, rows, starts, header_line)
    if ragged:
        first = ", ".join(f"line {s} has {n}" for s, n in ragged[:3])
        more = f" (and {len(ragged) - 3} more)" if len(ragged) > 3 else ""
        raise InputError(
            f"{path.name}: {len(ragged):,} {'row does' if len(ragged) == 1 else 'rows do'} not have {width} "
            f"field{'s' if width != 1 else ''} like the header: "
            f"{first}{more}.",
            fix='Wrap fields that contain the delimiter in double quotes ("..."), or remove the extra fields.',
        )
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame["_row"] = starts
    return frame


def _without_empty_unnamed_columns(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """A delimiter at the end of every line (``id,text,``) makes a last column with no name and no values: it is
    dropped, as a spreadsheet shows nothing there. An unnamed column with values is left for the header check."""
    unnamed = [i for i, h in enumerate(header) if not h]
    if not unnamed or not any(header):
        return header, rows
    empty = {i for i in unnamed if all(i >= len(r) or not r[i].strip() for r in rows)}
    if not empty:
        return header, rows
    keep = [i for i in range(len(header)) if i not in empty]
    width = len(header)
    return [header[i] for i in keep], [[r[i] for i in keep if i < len(r)] + r[width:] for r in rows]


def _refuse_title_lines(path: Path, header: list[str], rows: list[list[str]], starts: list[int],
                        header_line: int) -> None:
    """A report's title and date above the table ("Feedback export", "Generated 2024-01-05", a blank line): the
    first line then has one field and the table's rows several. Names the line that looks like the real header."""
    widths = pd.Series([len(r) for r in rows])
    usual = int(widths.mode().iloc[0])
    if usual < 2:
        return
    at = next((i for i, r in enumerate(rows[:20]) if len(r) == usual), None)
    # Title lines above (one field each), then the header and rows alike: not a table whose texts hold commas.
    if not at or not (widths[:at] == 1).all() or not (widths[at:at + 5] == usual).all():
        return
    above = starts[at] - header_line
    shown = ", ".join(rows[at])[:80]
    raise InputError(
        f"{path.name}: line {header_line} ({header[0][:60]!r}) has one field but the table below has {usual}: its "
        f"header seems to be line {starts[at]} ({shown!r}).",
        fix=f"Delete the {'line' if above == 1 else f'{above} lines'} above that header, so that the column names "
        "are the first line.",
    )


def _sniff_delimiter(text: str) -> str:
    head = text[:65536].split("\n", 1)[0]
    counts = {d: head.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _check_header(path: Path, header: list[str], line: int = 1) -> None:
    if not any(header):
        raise InputError(f"{path.name}, line {line}: the header row is empty.", fix="Put the column names in the first row.")
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if not name:
            raise InputError(f"{path.name}, line {line}: column {i} has no name.",
                             fix="Give every column a name in the header row.")
        if name in seen:
            raise InputError(f'{path.name}, line {line}: the column name "{name}" appears twice.',
                             fix="Give each column a unique name.")
        seen.add(name)


def _record_keys(records: list) -> list[str]:
    """Every field name of the records, in the order they first appear (JSON names are always text)."""
    return list(dict.fromkeys(k for rec in records for k in rec))


def _records_frame(path: Path, fmt: str, records: list, positions: list[int], label: str, notes: list[str],
                   columns: list[str] | None = None, text: str = "") -> RawTable:
    """The records as a frame with one column per field name (``columns``, or every name they use); a field a
    record lacks is missing. Values stay as JSON gave them: no column-wide type guessing, so that an id 7 reads
    "7" whether or not another record lacks an id (and any slice of the records reads as the whole file does).

    ``text`` is the JSON the records came from: where it escapes a surrogate (``\udc00``), a lone one in a value
    (which no UTF-8 text can hold, and pandas and Parquet refuse with a traceback) becomes U+FFFD."""
    for rec, pos in zip(records, positions, strict=True):
        if not isinstance(rec, dict):
            kind = type(rec).__name__.replace("str", "text").replace("list", "list").replace("NoneType", "null")
            raise InputError(
                f"{path.name}, {label} {pos}: expected an object with named fields, found {kind}.",
                fix='Write each message as an object, e.g. {"text": "...", "date": "2024-05-01"}.',
            )
    if columns is None:
        columns = _record_keys(records)
    value = _json_text_value if _SURROGATE_ESCAPE.search(text) else _json_value
    frame = pd.DataFrame({c: [value(rec.get(c)) for rec in records] for c in columns}, dtype=object)
    frame["_row"] = positions
    return RawTable(path, fmt, frame, label, notes)


def _json_value(value: object) -> object:
    return None if isinstance(value, float) and value != value else value  # NaN (which Python's JSON reads) is missing


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_text_value(value: object) -> object:
    # A pair of escapes is one character once parsed: a surrogate left in a string is a lone one.
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else _json_value(value)


def _json_reason(err: json.JSONDecodeError) -> str:
    """The decoder's reason as a whole sentence: some end in "at" and leave the place to the text that
    ``str(err)`` adds after them ("Unterminated string starting at"), which our message words itself."""
    return f"{err.msg} character {err.colno}" if err.msg.endswith(" at") else err.msg


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
            f"{path.name}, line {err.lineno}, character {err.colno}: not valid JSON ({_json_reason(err)}).",
            fix="Fix the JSON at that place (a missing comma, quote or bracket is the usual cause).",
        ) from None
    if isinstance(data, dict):
        data = _records_in_object(path, data, notes)
    if not isinstance(data, list):
        raise InputError(f"{path.name}: expected a list of messages, found a single value.",
                         fix='Write the messages as a list: [{"text": "..."}, ...].')
    return _records_frame(path, fmt, data, list(range(1, len(data) + 1)), "record", notes, text=text)


def _records_in_object(path: Path, data: dict, notes: list[str]) -> list:
    """The records of a JSON file that is an object, as exports and APIs write them: its one list
    (``{"reviews": [...]}``), the one list inside its one object member (``{"response": {"reviews": [...]}}``, up
    to three levels down), or its members when each is a record keyed by its id (``{"r1": {...}, "r2": {...}}``)."""
    where, top = [], data
    for _ in range(3):
        lists = [k for k, v in data.items() if isinstance(v, list)]
        objects = [k for k, v in data.items() if isinstance(v, dict)]
        if len(lists) == 1:
            if where:
                notes.append(f'Read the list at "{".".join([*where, lists[0]])}" of the JSON object.')
            return data[lists[0]]
        if not lists and len(objects) == 1 and len(data) <= 8:  # a wrapper: {"response": {...}, "status": "ok"}
            where.append(objects[0])
            data = data[objects[0]]
            continue
        break
    if not where and len(top) >= 2 and all(isinstance(v, dict) for v in top.values()):
        inner = [set(v) for v in top.values()]
        if all(k == inner[0] for k in inner) and len(inner[0]) > len(top):
            # pandas' DataFrame.to_json() default: one member per column, each keyed by row ({"text": {"0": "…"}}).
            # Read as records keyed by id, its columns became rows and its rows columns.
            notes.append(f"Read the JSON object as columns ({_quoted(list(top)[:6])}{', …' if len(top) > 6 else ''}), "
                         "each holding one value per row: the layout pandas' to_json() writes by default.")
            rows = list(next(iter(top.values())))
            # The row names are a column too when they are ids, not pandas' own row numbers 0, 1, 2, …
            named = rows != [str(i) for i in range(len(rows))] and "id" not in top
            return [{**({"id": row} if named else {}), **{column: values[row] for column, values in top.items()}}
                    for row in rows]
        key = "id" if not any("id" in v for v in top.values()) else "key"
        while any(key in v for v in top.values()):
            key = "_" + key
        notes.append(f"Read the JSON object's {len(top):,} members as messages, each member's name in column "
                     f'"{key}".')
        return [{key: k, **v} for k, v in top.items()]
    keys = ", ".join(map(repr, list(data)[:8]))
    raise InputError(
        f"{path.name}: expected a list of messages, or an object with one list in it; found an object with keys {keys}"
        + (f' (at "{".".join(where)}")' if where else "") + ".",
        fix='Write the messages as a list: [{"text": "..."}, ...].',
    )


def _read_jsonl(path: Path, fmt: str) -> RawTable:
    text, notes = decode_bytes(path, path.read_bytes())
    records, positions = _parse_jsonl(path, text)
    if not records:
        raise InputError(f"{path.name}: the file is empty (no JSON lines).", fix="Export the feedback again; the file has no data.")
    return _records_frame(path, fmt, records, positions, "line", notes, text=text)


def _parse_jsonl(path: Path, text: str, first_line: int = 1) -> tuple[list, list[int]]:
    """The JSON value on each non-blank line of ``text`` and its line number. Lines end at "\n" only: a JSON
    string may hold a raw U+2028 or U+0085, which are line breaks to Python's ``splitlines`` but not to JSON Lines."""
    records, positions = [], []
    for lineno, line in enumerate(text.split("\n"), start=first_line):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path.name}, line {lineno}, character {err.colno}: not valid JSON ({_json_reason(err)}).",
                fix="Each line must be one complete JSON object; fix or remove that line.",
            ) from None
        positions.append(lineno)
    return records, positions


SEQUENCES = (list, tuple, np.ndarray)
"""Cell values that hold several values (JSON arrays, Parquet lists)."""


def is_nested(value: object) -> bool:
    """Whether a cell holds several values or a record rather than one value."""
    return isinstance(value, (*SEQUENCES, dict))


def record_texts(values: pd.Series) -> np.ndarray:
    """Which of ``values`` are a record or a list written as JSON ('{"text": "…", "date": "…"}'): what a nested
    cell (Parquet, JSON) becomes when read as text. Such a column holds the messages' fields, not messages."""
    def is_record(value: object) -> bool:
        if not isinstance(value, str):
            return False
        text = value.strip()
        if (text[:1], text[-1:]) not in (("{", "}"), ("[", "]")):
            return False
        try:
            return isinstance(json.loads(text, strict=False), dict | list)  # a newline in a string, as cleaned
        except ValueError:
            return False

    return np.array([is_record(v) for v in values], dtype=bool)


def cell_text(value: object) -> str | None:
    """A cell as people read it: a list as "a, b", a record as JSON (not Python's or NumPy's repr), missing as None."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, SEQUENCES):
        return ", ".join(t for t in (cell_text(v) for v in value) if t)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value).strip()


def _nested_as_text(table: pa.Table) -> pa.Table:
    """Lists, records and maps as text, from Arrow's own values: pandas would turn a record's whole numbers into
    floats wherever a record is missing ({"id": 7.0})."""
    import pyarrow as pa

    for i, column in enumerate(table.schema):
        if pa.types.is_nested(column.type):
            values = [cell_text(dict(v) if isinstance(v, list) and pa.types.is_map(column.type) else v)
                      for v in table.column(i).to_pylist()]
            table = table.set_column(i, column.name, pa.array(values, pa.string()))
    return table


def _read_parquet(path: Path, fmt: str) -> RawTable:
    return _parquet_part(path, fmt, None, 1)


def _parquet_part(path: Path, fmt: str, row_groups: list[int] | None, first_row: int) -> RawTable:
    """The file's rows (or those of ``row_groups``), numbered from ``first_row``, with binary and nested cells as text."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as file:
            table = file.read() if row_groups is None else file.read_row_groups(row_groups)
            frame = _nested_as_text(table).to_pandas()
    except Exception as err:  # pyarrow raises many types for a corrupt file
        raise InputError(
            f"{path.name}: cannot be read as Parquet ({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}).",
            fix="Check that the file is a complete Parquet file; export it again.",
        ) from None
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    notes = []
    for col in [c for c in frame.columns if frame[c].dtype == "object"]:
        # Binary cells become text here (lists and structs already did, in Arrow), so that later stages see text.
        cells = frame[col]
        binary = cells.map(lambda v: isinstance(v, bytes | bytearray))
        if binary.any():
            text = cells[binary].map(lambda v: bytes(v).decode("utf-8", errors="replace"))
            if text.str.contains("\ufffd", regex=False).any():
                notes.append(f'Column "{col}" holds bytes that are not UTF-8 text; unreadable bytes were replaced.')
            frame[col] = cells.where(~binary, text)
    frame["_row"] = range(first_row, first_row + len(frame))
    return RawTable(path, fmt, frame, "row", notes)


# What a formula cell shows when it fails: no value. Text such as "NA" (North America) or "None of it arrived" is
# read as written, as in a CSV file (pandas' default would make it missing).
_EXCEL_ERRORS = ["#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!",
                 "#GETTING_DATA", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!"]


def _read_xlsx(path: Path, fmt: str, sheet: str | None = None) -> RawTable:
    """The sheet named ``sheet``, else the workbook's first sheet with rows below its header (a first sheet of notes
    or a cover page is passed over, with a note); other sheets with rows are named in a note, as they are not read."""
    try:
        with pd.ExcelFile(path, engine="openpyxl") as book:
            names = [str(n) for n in book.sheet_names]
            with_rows = [n for n in names if _sheet_has_rows(book, n)]
            # A cover or notes sheet of a few lines before the data is passed over too: fewer rows than an
            # analysis needs cannot be the feedback when a later sheet has that many.
            rows = {n: _sheet_rows(book, n) for n in with_rows}
            enough = [n for n in with_rows if rows[n] >= FEW_ROWS]
            if sheet is not None:
                chosen = _named_sheet(path, names, sheet)
            else:
                chosen = enough[0] if enough else with_rows[0] if with_rows else names[0]
            frame, subheader = _excel_sheet(book, chosen)
            if sheet is not None and frame.empty:
                others = [n for n in with_rows if n != chosen]
                raise InputError(f'{path.name}, sheet "{chosen}": no rows below its header.',
                                 fix=f"Choose the sheet that holds the messages ({_quoted(others)})." if others
                                 else "Export the feedback again with its messages.")
            _refuse_title_rows(path, chosen, frame)
    except InputError:
        raise
    except Exception as err:  # openpyxl raises zipfile / xml / key errors for broken files
        raise InputError(
            f"{path.name}: cannot be read as an Excel workbook ({type(err).__name__}).",
            fix="Open it in Excel or LibreOffice and save it again as .xlsx.",
        ) from None
    notes = [SURVEY_SUBHEADER_NOTE] if subheader else []
    if sheet is not None:  # the user chose it: what was passed over or left is no news
        return RawTable(path, fmt, frame, "row", notes, chosen, with_rows)
    passed = names[:names.index(chosen)]
    if passed:
        what = [f'"{n}" ({rows[n]} row{"" if rows[n] == 1 else "s"})' if n in rows
                else f'"{n}" (no rows below a header)' for n in passed]
        notes.append(f'Read sheet "{chosen}"; passed over {", ".join(what)} before it: a cover or notes sheet, '
                     "not the feedback.")
    others = [n for n in with_rows if n not in passed and n != chosen]
    if others:
        notes.append(f'Only sheet "{chosen}" was read; the workbook\'s other sheets with rows ({_quoted(others)}) '
                     "were not. Choose one with --sheet (sheet: in a mapping file), put their rows in one sheet, or save "
                     "each as its own file and add it with --add.")
    return RawTable(path, fmt, frame, "row", notes, chosen, with_rows)


def _named_sheet(path: Path, names: list[str], sheet: str) -> str:
    """The workbook's sheet called ``sheet``; a difference of case or of spaces around it is forgiven, as a user
    types the name seen on the tab."""
    for same in (lambda n: n == sheet, lambda n: n.strip().casefold() == sheet.strip().casefold()):
        found = [n for n in names if same(n)]
        if len(found) == 1:
            return found[0]
    close = difflib.get_close_matches(sheet, names, n=1, cutoff=0.6)
    hint = f'Did you mean "{close[0]}"? ' if close else ""
    raise InputError(f'{path.name}: the workbook has no sheet named "{sheet}"; its sheets are {_quoted(names)}.',
                     fix=f"{hint}Give one of those names with --sheet (or sheet: in the mapping file), or leave it "
                         "out to read the first sheet with rows.")


def _refuse_title_rows(path: Path, sheet: str, frame: pd.DataFrame) -> None:
    """A report's title (or a merged cell) above the table: the first row then names one or two columns
    ("Feedback export", "Unnamed: 1", …) and the real header is a row below. Names the row that looks like it, as
    :func:`_refuse_title_lines` does for a CSV; without this, the header was read as a row of data and its "Date"
    as a date that could not be read."""
    columns = [c for c in frame.columns if c != "_row"]
    unnamed = [c for c in columns if c.startswith("Unnamed:")]
    if not unnamed or len(unnamed) < len(columns) / 2 or len(frame) < 2:
        return
    filled = frame[columns].notna().sum(axis=1)
    usual = int(filled.mode().iloc[0])
    if usual < 2:
        return
    for i in range(min(10, len(frame) - 1)):
        cells = frame[columns].iloc[i].dropna()
        if len(cells) == usual and all(isinstance(v, str) for v in cells) and (filled.iloc[i + 1:i + 4] >= 2).all():
            row = int(frame["_row"].iloc[i])
            named = [c for c in columns if c not in unnamed]
            raise InputError(
                f'{path.name}, sheet "{sheet}": row 1 names {len(named)} of its {len(columns)} columns '
                f"({', '.join(repr(c[:40]) for c in named[:2])}): a title or merged cells above the table. Its header "
                f"seems to be row {row} ({', '.join(str(v) for v in cells)[:80]!r}).",
                fix=f"Delete the {'row' if row == 2 else f'{row - 1} rows'} above that header (and unmerge its cells), "
                "so that the column names are the first row.")


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


FEW_ROWS = 30
"""A sheet with fewer rows than this (the fewest messages an analysis takes) before one with as many is a cover."""


def _sheet_rows(book: pd.ExcelFile, name: str) -> int:
    """Rows below the header as the sheet's stored dimensions say (no cell is read; 0 for a chart sheet)."""
    sheet = book.book[name]
    return max(0, (getattr(sheet, "max_row", 1) or 1) - 1)


def _sheet_has_rows(book: pd.ExcelFile, name: str) -> bool:
    """Whether a value lies below the sheet's first row, looked at row by row up to the first one: a sheet of notes
    is not parsed whole to find it has no messages."""
    sheet = book.book[name]
    if not hasattr(sheet, "iter_rows"):  # a chart sheet
        return False
    for row in sheet.iter_rows(min_row=2, values_only=True):
        if any(v is not None and not (isinstance(v, str) and not v.strip()) for v in row):
            return True
    return False


def _excel_sheet(book: pd.ExcelFile, name: str) -> tuple[pd.DataFrame, bool]:
    """A sheet's rows, and whether a survey tool's second header row was skipped (:func:`is_survey_subheader`)."""
    frame = book.parse(name, dtype=object, keep_default_na=False, na_values=_EXCEL_ERRORS)
    frame = frame.mask(frame.map(lambda v: isinstance(v, str) and not v.strip())).dropna(how="all")
    subheader = bool(len(frame)) and is_survey_subheader(frame.iloc[0].tolist())
    if subheader:
        frame = frame.iloc[1:]
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    frame = frame.drop(columns=[c for c in unnamed if frame[c].isna().all()])
    frame.columns = [str(c) for c in frame.columns]
    # Spreadsheet row numbers: the header is row 1.
    frame["_row"] = [int(i) + 2 for i in frame.index]
    return frame.reset_index(drop=True), subheader


# --- column mapping ---------------------------------------------------------------------------


def name_key(name: str) -> str:
    """A column name as its lists of names are matched: lower case, no accents, spaces or signs. Accents are
    dropped, not the letters that bear them: "Date de création" is "datedecreation"."""
    plain = unicodedata.normalize("NFKD", name.lower()).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain)


def _find(columns: Iterable[str], names: tuple[str, ...]) -> str | None:
    by_key = {name_key(c): c for c in columns}
    for n in names:
        if n in by_key:
            return by_key[n]
    return None


ROLE_OPTIONS = {"text": "text", "date": "date", "id": "id", "metadata": "meta", "tags": "tags"}
"""The command-line option (without ``--``) that names each role's column."""


def _require(table: RawTable, role: str, name: str, mapping: ColumnMapping) -> str:
    if name in table.columns:
        return name
    exact = {c.lower(): c for c in table.columns}
    if name.lower() in exact:
        return exact[name.lower()]
    close = difflib.get_close_matches(name, table.columns, n=1, cutoff=0.5)
    hint = f'Did you mean "{close[0]}"? ' if close else ""
    # A name from a mapping file is fixed there: pointing at a command-line option the user never typed misleads.
    where = mapping.where_named(role)
    asked, fix = ((f"{role} in {where}", f"Change {role} in {where} to one of those names.") if where else
                  (f"--{ROLE_OPTIONS[role]}", f"Pass --{ROLE_OPTIONS[role]} with one of those names."))
    raise InputError(
        f'{table.path.name}: there is no column "{name}" (asked for by {asked}). '
        f"The columns are: {', '.join(repr(c) for c in table.columns)}.",
        fix=f"{hint}{fix}",
    )


def resolve_columns(table: RawTable, mapping: ColumnMapping) -> ResolvedColumns:
    """Apply the user's mapping, detect the rest from common names, or explain what is missing.

    Raises:
        InputError: a mapped column is not in the file, no text column is found, or the detected text column is
            also mapped as the date or the id.
    """
    detected: list[str] = []
    if mapping.text:
        text = _require(table, "text", mapping.text, mapping)
    else:
        text = _find(table.columns, TEXT_NAMES)
        if text is None:
            from pipelines.clean import looks_like_dates  # clean imports this module

            # "created_at" is as close to "text" as "txt": a column of dates is never offered as the messages.
            wordy = [c for c in table.columns if not looks_like_dates(table.frame[c])]
            close = difflib.get_close_matches("text", wordy, n=1, cutoff=0.4)
            longest = longest_text_column(table.frame, table.columns)
            hint = longest or (close[0] if close else None)
            raise InputError(
                f"{table.path.name}: no message text column found. "
                f"The columns are: {', '.join(repr(c) for c in table.columns)}.",
                fix=(f'Pass --text "{hint}" if that column holds the messages' if hint else "Pass --text COLUMN")
                + " (or name the column text, message, review, comment or body).",
            )
        detected.append("text")
    date = _require(table, "date", mapping.date, mapping) if mapping.date else None
    id_ = _require(table, "id", mapping.id, mapping) if mapping.id else None
    # A column already given a role is not detected for another: the date and the id cannot be switched off, so
    # "--text id" must not also make "id" the id. The text is detected first, whatever --date and --id say, and a
    # clash with it is refused below: silently analysing some other column as the text would be worse.
    unused = [c for c in table.columns if c not in {text, date, id_}]
    from_values = False
    if date is None:
        date = _find(unused, DATE_NAMES)
        if date is None:  # "Eingangsdatum", "Opened": a name no list holds, but values that are all dates
            date = _dates_by_values(table, unused)
            from_values = date is not None
        if date:
            detected.append("date")
    if id_ is None:
        id_ = _find(unused, ID_NAMES)
        if id_:
            detected.append("id")
    if "text" in detected:
        # Two roles the caller named alike are the caller's to refuse (the CLI does, before reading the file): a
        # caller may read the texts as dates on purpose, to try the bad-date path.
        for role, column in (("date", date), ("id", id_)):
            check_distinct_columns([("text", text, DETECTED), (role, column, f"--{role}")], f"{table.path.name}: ")
    used = {text, date, id_}
    if mapping.metadata is not None:
        metadata = tuple(_require(table, "metadata", m, mapping) for m in mapping.metadata)
    else:
        metadata = tuple(c for c in table.columns if c not in used)
    tags = None if mapping.tags is None else tuple(_require(table, "tags", t, mapping) for t in mapping.tags)
    for column in tags or ():
        if column not in metadata:
            where = mapping.where_named("tags") or "--tags"
            raise InputError(f'{table.path.name}: "{column}" is named as tags ({where}) but is not a metadata column '
                             f"(those are: {', '.join(repr(m) for m in metadata) or 'none'}).",
                             fix=f'Add "{column}" to the metadata columns (--meta or metadata:), or leave it out of tags.')
    return ResolvedColumns(text, date, id_, metadata, tuple(detected), from_values, tags)


def _dates_by_values(table: RawTable, columns: Sequence[str]) -> str | None:
    """The first of ``columns`` whose values are dates (:func:`pipelines.clean.looks_like_dates`), or None; a
    table without rows (a file read in parts, only its header known here) has none."""
    from pipelines.clean import looks_like_dates  # clean imports this module

    return next((c for c in columns if looks_like_dates(table.frame[c])), None)


def check_distinct_columns(chosen: Sequence[tuple[str, str | None, str]], where: str = "") -> None:
    """Refuse one column as two of the text, the date and the id, as the dashboard's upload form does: the texts
    would be read as dates, or every message would be its own id.

    ``chosen`` holds (role, column or None, how it was chosen: "--id", "id in mapping.yaml" or :data:`DETECTED`)
    in the order text, date, id; ``where`` starts the message (e.g. "reviews.csv: ").

    Raises:
        InputError: names the column, both roles and how each was chosen, and which choice to change.
    """
    for i, (first, column, how_first) in enumerate(chosen):
        for second, other, how_second in chosen[i + 1:]:
            if column is None or column != other:
                continue
            change = how_second if how_second != DETECTED else how_first
            message = f'the column "{column}" would be both the {first} ({how_first}) and the {second} ({how_second}).'
            raise InputError(
                f"{where}{message}" if where else message[:1].upper() + message[1:],
                fix=f"Choose a different column for the text, the date and the id: change {change}"
                + (", or name the text column with --text." if DETECTED in (how_first, how_second) else "."),
            )


def longest_text_column(frame: pd.DataFrame, columns: Sequence[str]) -> str | None:
    """Of ``columns`` of ``frame``, the one with the longest texts on average (at least 20 characters) that are not
    dates: a good guess for the messages."""
    from pipelines.clean import looks_like_dates  # clean imports this module

    best, best_len = None, 0.0
    for c in columns:
        values = frame[c].dropna().head(200)
        if values.empty or not all(isinstance(v, str) for v in values) or looks_like_dates(values) \
                or record_texts(values).mean() >= 0.5:  # a record's JSON is long, but it is not a message
            continue
        mean_len = values.str.len().mean()
        if mean_len > best_len:
            best, best_len = c, mean_len
    return best if best_len >= 20 else None


# --- reading in parts (on Dask workers) ----------------------------------------------------------


@dataclass(frozen=True)
class FilePart:
    """A slice of a feedback file that a worker reads on its own.

    Text formats: bytes ``[start, end)``, cut after a line end outside quotes, whose first line is
    ``first_line``. JSON (a list of records): bytes ``[start, end)``, cut between two records, whose first
    record is number ``first_line`` (0 until the parts are counted: :func:`number_json_parts`); the list itself
    spans bytes ``list_span`` of the file (all of it, or the list inside ``{"key": [...]}``). Parquet: row
    groups ``[start, end)``, whose first row is ``first_line``.
    """

    path: str
    format: str
    start: int
    end: int
    first_line: int
    header: tuple[str, ...] = ()
    delimiter: str = ","
    with_nulls: tuple[str, ...] = ()  # Parquet: integer and true/false columns with a missing value in the file
    list_span: tuple[int, int] = (0, 0)


@dataclass
class ReadPlan:
    """Where a file is cut into parts, and its columns where the plan knows them (``None`` for JSON and JSON
    Lines, whose columns are the union of every record's fields: :func:`part_fields` per part)."""

    path: Path
    format: str
    parts: list[FilePart]
    columns: list[str] | None

    def columns_table(self, columns: list[str]) -> RawTable:
        """A table with the file's columns and no rows: enough to map the columns."""
        label = {"parquet": "row", "json": "record"}.get(self.format, "line")
        return RawTable(self.path, self.format, pd.DataFrame(columns=[*columns, "_row"]), label)


_HEAD_BYTES = 1 << 20


def plan_parts(path: str | Path, part_bytes: int, part_rows: int) -> ReadPlan | None:
    """Cut a CSV, TSV, JSON, JSON Lines or Parquet file into parts of about ``part_bytes`` bytes (Parquet: whole
    row groups, about ``part_rows`` rows) that can be read on their own, looking only at the file's start, its
    quote marks and line ends (JSON: where one record ends and the next begins). ``None`` when the file is better
    read whole by :func:`read_feedback_file`, which also gives the exact error: another format, a missing or
    empty file, not UTF-8 at its start, a malformed header, or JSON that is neither a list nor an object whose
    only member is the list (``{"reviews": [...]}``).
    """
    path = Path(path)
    try:
        fmt = detect_format(path)
        size = path.stat().st_size
    except (InputError, OSError):
        return None
    if size == 0 or fmt not in ("csv", "tsv", "json", "jsonl", "parquet"):
        return None
    if fmt == "parquet":
        return _plan_parquet(path, part_rows)
    with open(path, "rb") as f:
        head = f.read(min(size, _HEAD_BYTES))
    if fmt == "json":  # whether the text is UTF-8 each part's reader checks
        span = _json_list_span(path, head, size)
        if span is None:
            return None
        cuts = _json_cut_points(path, span, max(1, part_bytes))
        return ReadPlan(path, fmt, [FilePart(str(path), fmt, start, end, 0, list_span=span)
                                    for start, end in zip(cuts, [*cuts[1:], span[1]], strict=True)], None)
    if len(head) < size:
        head = head[: head.rfind(b"\n") + 1]
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if not text.strip() or "\x00" in text:
        return None
    header: list[str] | None = None
    delimiter = ","
    if fmt in ("csv", "tsv"):
        if _EXCEL_SEP.match(text):
            return None  # a "sep=;" line above the header: read whole (rare, and Excel-sized)
        delimiter = "\t" if fmt == "tsv" else _sniff_delimiter(text)
        try:
            header = [h.strip() for h in next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))]
            _check_header(path, header)
        except (csv.Error, StopIteration, InputError):
            return None
    cuts = _cut_points(path, size, max(1, part_bytes), quoted=header is not None)
    ends = [c for c, _ in cuts[1:]] + [size]
    parts = [FilePart(str(path), fmt, start, end, line, tuple(header or ()), delimiter)
             for (start, line), end in zip(cuts, ends, strict=True)]
    return ReadPlan(path, fmt, parts, header)


def _plan_parquet(path: Path, part_rows: int) -> ReadPlan | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as file:
            meta, schema = file.metadata, file.schema_arrow
            groups = [meta.row_group(i).num_rows for i in range(file.num_row_groups)]
            columns = [str(c) for c in schema.empty_table().to_pandas().columns]
            # Read whole, an integer column with a missing value becomes floats and a true/false one objects; a
            # row group without one would keep its type. The row groups' statistics say which columns have one.
            with_nulls = []
            for j, field in enumerate(schema):
                if not (pa.types.is_integer(field.type) or pa.types.is_boolean(field.type)):
                    continue
                stats = [meta.row_group(i).column(j).statistics for i in range(len(groups))]
                if any(st is None or not st.has_null_count for st in stats):
                    return None  # unknown: read whole
                if sum(st.null_count for st in stats):
                    with_nulls.append(field.name)
    except Exception:  # a corrupt file, or a nested schema: the whole read gives the error or the table
        return None
    if sum(groups) == 0:
        return None
    parts, first, row = [], 0, 1
    while first < len(groups):
        last, rows = first, 0
        while last < len(groups) and (rows == 0 or rows + groups[last] <= max(1, part_rows)):
            rows += groups[last]
            last += 1
        parts.append(FilePart(str(path), "parquet", first, last, row, with_nulls=tuple(with_nulls)))
        first, row = last, row + rows
    return ReadPlan(path, "parquet", parts, columns)


def _line_ends(chunk: bytes, csv_lines: bool) -> int:
    """Line ends as the readers count them: "\\n", "\\r\\n" and a lone "\\r" for CSV (Python's csv module), "\\n" for JSON Lines."""
    n = chunk.count(b"\n")
    return n + chunk.count(b"\r") - chunk.count(b"\r\n") if csv_lines else n


def _cut_points(path: Path, size: int, part_bytes: int, quoted: bool) -> list[tuple[int, int]]:
    """``(byte offset, line number)`` where each part starts: just after a "\\n" that has an even number of quote
    marks before it (so outside a quoted field, in a well-formed file), about every ``part_bytes`` bytes."""
    import mmap

    cuts = [(0, 1)]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos, quotes, lines = 0, 0, 0

        def advance(to: int) -> None:  # count the quote marks and line ends up to ``to``
            nonlocal pos, quotes, lines
            chunk = mm[pos:to]
            quotes += chunk.count(b'"') if quoted else 0
            lines += _line_ends(chunk, quoted)
            pos = to

        target = part_bytes
        while target < size:
            if mm[target - 1 : target] == b"\r":
                target += 1  # keep a "\r\n" in one piece, so that it counts as one line end
            advance(target)
            while True:
                nl = mm.find(b"\n", pos)
                if nl < 0:
                    return cuts
                advance(nl + 1)
                if quotes % 2 == 0:
                    break
            if pos >= size:
                break
            cuts.append((pos, lines + 1))
            target = pos + part_bytes
    return cuts


_JSON_SPACE = " \t\n\r"  # what JSON counts as blank space (str.strip's default strips more)
_RECORD_BOUNDARY = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")
# An object whose first member is a list: {"reviews": [ (a key with valid escapes only, as JSON allows them).
_LIST_IN_OBJECT = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"[ \t\n\r]*:[ \t\n\r]*\[')
_TAIL_BYTES = 4096


def _json_list_span(path: Path, head: bytes, size: int) -> tuple[int, int] | None:
    """Bytes ``[start, end)`` of the list of records in a JSON file: the whole file when it is a list, or the list
    of ``{"key": [...]}`` when the file ends right after it. A second member after the list would then lie inside
    the span and leave a part that is no valid list, so the file is read whole, as it is when this returns
    ``None``: the whole read reads it or names the problem."""
    space = _JSON_SPACE.encode()
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    if head[bom:].lstrip(space).startswith(b"["):
        return 0, size
    opening = _LIST_IN_OBJECT.match(head, bom)
    if opening is None:
        return None
    offset = max(0, size - _TAIL_BYTES)
    with open(path, "rb") as f:
        f.seek(offset)
        tail = f.read().rstrip(space)
    if not tail.endswith(b"}"):
        return None
    tail = tail[:-1].rstrip(space)
    end = offset + len(tail)
    if not tail.endswith(b"]") or end <= opening.end():
        return None
    return opening.end() - 1, end


def _json_cut_points(path: Path, span: tuple[int, int], part_bytes: int) -> list[int]:
    """Byte offsets where the parts of a JSON list of records (bytes ``span`` of the file) start: at the "{" of a
    "}, {" about every ``part_bytes`` bytes. Such a place may also be inside a text or a nested list; then the
    part that ends there is not valid JSON on its own (a text or bracket is left open), so :func:`read_part`
    refuses it and the whole file is read instead: a wrong cut costs time, never a record."""
    import mmap

    start, end = span
    cuts = [start]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        target = start + part_bytes
        while target < end:
            found = _RECORD_BOUNDARY.search(mm, target, end)
            if found is None:
                break
            cuts.append(found.end() - 1)
            target = found.end() - 1 + part_bytes
    return cuts


def _json_part_records(part: FilePart, text: str) -> list | None:
    """The records of one part of a JSON list, or ``None`` when the part is not a run of whole records."""
    body = text.strip(_JSON_SPACE)
    if part.start == part.list_span[0]:
        if not body.startswith("["):
            return None
        body = body[1:]
    last = part.end >= part.list_span[1]
    if not body.endswith("]" if last else ","):
        return None
    try:
        records = json.loads(f"[{body[:-1]}]")
    except (json.JSONDecodeError, RecursionError):
        return None
    return records


def number_json_parts(parts: list[FilePart], records: list[int]) -> list[FilePart]:
    """The parts of a JSON list with their first record numbers, given how many records each holds."""
    firsts = np.cumsum([1, *records[:-1]]).tolist()
    return [replace(p, first_line=int(first)) for p, first in zip(parts, firsts, strict=True)]


def _part_text(part: FilePart) -> str | None:
    with open(part.path, "rb") as f:
        f.seek(part.start)
        data = f.read(part.end - part.start)
    try:
        text = data.decode("utf-8-sig" if part.start == 0 else "utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def part_fields(part: FilePart) -> tuple[list[str], int] | None:
    """The field names a JSON or JSON Lines part's records use, in order of first use, and how many records it
    holds; ``None`` if the part cannot be read on its own."""
    table = read_part(part)
    return None if table is None else (table.columns, len(table.frame))


def read_part(part: FilePart, columns: list[str] | None = None) -> RawTable | None:
    """The records of one part, exactly as :func:`read_feedback_file` gives those rows of the whole file (JSON
    Lines: with ``columns``, the whole file's). ``None`` when the part cannot be read on its own (not UTF-8, a
    malformed record, a cut inside a quoted field): the caller then reads the whole file, which names the problem."""
    path = Path(part.path)
    try:
        if part.format == "parquet":
            table = _parquet_part(path, part.format, list(range(part.start, part.end)), part.first_line)
            for col in part.with_nulls:  # typed as the whole file reads them (pandas' own nullable types stay)
                dtype = table.frame[col].dtype if col in table.frame else None
                if isinstance(dtype, np.dtype) and dtype.kind in "iu":
                    table.frame[col] = table.frame[col].astype(np.float64)
                elif isinstance(dtype, np.dtype) and dtype.kind == "b":
                    table.frame[col] = table.frame[col].astype(object)
            return table
        text = _part_text(part)
        if text is None:
            return None
        if part.format == "jsonl":
            records, positions = _parse_jsonl(path, text, part.first_line)
            return _records_frame(path, part.format, records, positions, "line", [], columns, text)
        if part.format == "json":
            records = _json_part_records(part, text)
            if records is None:
                return None
            positions = list(range(part.first_line, part.first_line + len(records)))
            return _records_frame(path, part.format, records, positions, "record", [], columns, text)
        header = None if part.start == 0 else list(part.header)
        header, rows, starts = _parse_delimited(path, text, part.format, part.delimiter, part.first_line, header)
        if part.start == 0 and [h.strip() for h in header] != list(part.header):
            return None
        rows, starts, notes = _without_repeated_headers(header, rows, starts, file_start=part.start == 0)
        return RawTable(path, part.format, _delimited_frame(path, header, rows, starts), "line", notes)
    except (InputError, OSError):
        return None
