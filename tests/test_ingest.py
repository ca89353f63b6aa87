"""Ingestion: every format reads, and every user mistake gets its exact, helpful message."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.clean import clean_messages, normalise_text, parse_dates, text_hash
from pipelines.errors import InputError
from pipelines.ingest import longest_text_column, read_feedback_file, resolve_columns
from pipelines.settings import ColumnMapping, Settings

ROWS = [
    {"id": "a1", "created_at": "2024-05-01T10:00:00Z", "comment": "Refund took three weeks", "channel": "email"},
    {"id": "a2", "created_at": "2024-05-02 09:30", "comment": "Great app, fast delivery", "channel": "chat"},
    {"id": "a3", "created_at": "03/05/2024", "comment": "The courier lost my parcel", "channel": "email"},
]


def _write(tmp_path: Path, name: str, frame: pd.DataFrame | None = None) -> Path:
    frame = pd.DataFrame(ROWS) if frame is None else frame
    path = tmp_path / name
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".xlsx":
        frame.to_excel(path, index=False)
    return path


def _error(path: Path, mapping: ColumnMapping | None = None, settings: Settings | None = None) -> str:
    with pytest.raises(InputError) as info:
        table = read_feedback_file(path)
        cols = resolve_columns(table, mapping or ColumnMapping())
        clean_messages(table, cols, settings or Settings())
    return str(info.value)


@pytest.mark.parametrize("name", ["f.csv", "f.tsv", "f.json", "f.jsonl", "f.parquet", "f.xlsx"])
def test_every_format_reads_and_detects_columns(tmp_path, name):
    table = read_feedback_file(_write(tmp_path, name))
    cols = resolve_columns(table, ColumnMapping())
    assert (cols.text, cols.date, cols.id) == ("comment", "created_at", "id")
    assert cols.metadata == ("channel",)
    assert set(cols.detected) == {"text", "date", "id"}
    messages, report = clean_messages(table, cols, Settings())
    assert messages["text"].tolist() == [r["comment"] for r in ROWS]
    assert messages["message_id"].tolist() == ["a1", "a2", "a3"]
    assert str(messages["date"].dt.tz) == "UTC"
    assert messages["date"].iloc[1] == pd.Timestamp("2024-05-02 09:30", tz="UTC")
    assert messages["channel"].tolist() == ["email", "chat", "email"]


def test_json_object_wrapping_a_list(tmp_path):
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"data": ROWS}))
    assert len(read_feedback_file(path).frame) == 3


def test_json_objects_as_apis_and_databases_export_them(tmp_path):
    """The list one level further down ({"response": {"reviews": [...]}}) is found and named; an object of records
    keyed by their ids (a Firebase export) reads one message per member, its name as the id."""
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"status": "ok", "response": {"page": 1, "reviews": ROWS}}))
    table = read_feedback_file(path)
    assert len(table.frame) == 3 and table.notes == ['Read the list at "response.reviews" of the JSON object.']
    path.write_text(json.dumps({r["id"]: {k: v for k, v in r.items() if k != "id"} for r in ROWS}))
    table = read_feedback_file(path)
    assert table.notes == ["Read the JSON object's 3 members as messages, each member's name in column \"id\"."]
    messages, _ = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert messages["message_id"].tolist() == ["a1", "a2", "a3"] and messages["channel"].tolist()[0] == "email"
    path.write_text(json.dumps({"response": {"reviews": ROWS, "replies": ROWS}}))
    assert _error(path).startswith("f.json: expected a list of messages, or an object with one list in it; found an "
                                   "object with keys 'reviews', 'replies' (at \"response\").")


def test_excels_sep_line_names_the_delimiter_and_title_lines_name_the_header(tmp_path):
    """Excel writes "sep=;" above the header of a CSV it should open with semicolons: it names the delimiter and
    the rows keep their line numbers. A report's title lines above the table are refused with the line that looks
    like the header; a one-column table whose texts hold commas still gets the quoting advice."""
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfsep=;\r\nid;text;date\r\n1;Parcel came late, again;2024-01-02\r\n2;Kind staff;2024-01-03\r\n")
    table = read_feedback_file(path)
    assert table.columns == ["id", "text", "date"] and table.frame["_row"].tolist() == [3, 4]
    assert table.frame["text"].tolist() == ["Parcel came late, again", "Kind staff"]
    path.write_text("Feedback export\nGenerated 2024-01-05\n\nid,text,date\n1,Late,2024-01-02\n2,Kind,2024-01-03\n")
    assert _error(path) == (
        "excel.csv: line 1 ('Feedback export') has one field but the table below has 3: its header seems to be "
        "line 4 ('id, text, date').\n"
        "  How to fix: Delete the 3 lines above that header, so that the column names are the first line.")
    path.write_text("text\nGreat, fast\nOk then, fine\n")
    assert "do not have 1 field like the header" in _error(path)


def test_missing_file(tmp_path):
    assert _error(tmp_path / "nope.csv") == (
        f"{tmp_path / 'nope.csv'}: file not found.\n  How to fix: Check the path; it is read relative to the current folder."
    )


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert _error(path) == "empty.csv: the file is empty (0 bytes).\n  How to fix: Export the feedback again; the file has no data."


def test_header_only(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("id,text\n")
    assert _error(path) == "h.csv: the file has a header but no rows.\n  How to fix: Export the feedback again with its messages."


def test_unknown_format(tmp_path):
    path = tmp_path / "feedback.docx"
    path.write_bytes(b"PK")
    assert _error(path) == (
        "feedback.docx: unknown file format (.docx).\n  How to fix: Save the file as one of: CSV (.csv), TSV (.tsv), "
        "JSON (.json), JSON Lines (.jsonl), Parquet (.parquet), Excel (.xlsx), with the matching extension."
    )


def test_undecodable_bytes_fall_back_and_say_so(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,text\n1,Caf\xe9 was cold\n2,fine\n".encode("cp1252"))
    table = read_feedback_file(path)
    assert table.frame["text"].iloc[0] == "Café was cold"
    assert table.notes == [
        "latin.csv: not valid UTF-8 (first bad byte at line 2); read it as Windows-1252 instead. "
        "Check accented letters, or save the file as UTF-8 to be sure."
    ]


def test_utf8_bom_is_invisible(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,text\n1,hello there\n".encode())
    table = read_feedback_file(path)
    assert table.columns == ["id", "text"] and table.notes == []


def test_ragged_rows_name_the_lines(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,text,channel\n1,ok,email\n2,too,many,fields\n3,fine,chat\n4,short\n")
    assert _error(path) == (
        "ragged.csv: 2 rows do not have 3 fields like the header: line 3 has 4, line 5 has 2.\n"
        '  How to fix: Wrap fields that contain the delimiter in double quotes ("..."), or remove the extra fields.'
    )


def test_unclosed_quote(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('id,text\n1,"fine"\n2,"never closed\n3,next\n')
    assert _error(path) == (
        "quote.csv, line 3: a quoted field starts here and is never closed.\n"
        '  How to fix: Close the quote (") at the end of that field, or export the file again.'
    )


def test_missing_text_column_lists_columns_and_suggests(tmp_path):
    frame = pd.DataFrame({"ticket": [1, 2], "customer_remarks": ["the parcel was late again", "refund please now"]})
    path = _write(tmp_path, "t.csv", frame)
    assert _error(path) == (
        "t.csv: no message text column found. The columns are: 'ticket', 'customer_remarks'.\n"
        '  How to fix: Pass --text "customer_remarks" if that column holds the messages '
        "(or name the column text, message, review, comment or body)."
    )


def test_a_column_of_dates_is_never_offered_as_the_messages(tmp_path):
    """"created_at" is as close to "text" as a typo: it was offered as the messages' column."""
    frame = pd.DataFrame({"rating": [5, 4], "created_at": ["2026-01-02", "2026-01-03"], "channel": ["web", "app"]})
    assert _error(_write(tmp_path, "t.csv", frame)).endswith(
        "How to fix: Pass --text COLUMN (or name the column text, message, review, comment or body).")


def test_a_text_column_of_dates_or_numbers_is_refused_with_the_likely_one(tmp_path):
    """A wrong --text used to reach the topic model and end in a traceback ("empty vocabulary")."""
    frame = pd.DataFrame({"comment": [f"Delivery number {i} was quick and friendly" for i in range(30)],
                          "created_at": [f"2026-01-{i % 28 + 1:02d}" for i in range(30)], "order": range(30)})
    path = _write(tmp_path, "f.csv", frame)
    assert _error(path, ColumnMapping(text="created_at", date=None)) == (
        'f.csv: column "created_at", read as the message text, holds dates (e.g. "2026-01-01" at line 2), not '
        'messages.\n  How to fix: Pass --text "comment" if that column holds the messages.')
    assert _error(path, ColumnMapping(text="order")).startswith(
        'f.csv: column "order", read as the message text, holds numbers or codes without words (e.g. "0" at line 2)')


def test_a_rating_column_with_a_few_words_is_said_to_be_read_as_text(tmp_path):
    """147 ratings of 1-5 and "4 stars", "N/A", "4,5": the column was quietly text, no scale for the Expectations
    page, and "N/A" a filter value."""
    ratings = [str(1 + i % 5) for i in range(47)] + ["4 stars", "N/A", "4,5"]
    frame = pd.DataFrame({"text": [f"Parcel {i} came late and the box was crushed" for i in range(50)],
                          "rating": ratings})
    table = read_feedback_file(_write(tmp_path, "f.csv", frame))
    _, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert report.notes == ['Column "rating": 3 of 50 values are not numbers (\'4 stars\', \'N/A\', \'4,5\'; first at line '
                            "49), so the column is read as text, not as a scale. If it is a rating, write those as plain "
                            "numbers, such as 4 or 4.5, or leave them empty."]
    frame["rating"] = ["good", "bad"] * 25  # words throughout: a category, nothing to say
    table = read_feedback_file(_write(tmp_path, "g.csv", frame))
    assert clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())[1].notes == []


def test_a_workbook_or_parquet_file_named_csv_is_named_for_what_it_is(tmp_path):
    frame = pd.DataFrame({"text": ["Parcel came late"] * 3})
    frame.to_excel(tmp_path / "export.csv", index=False, engine="openpyxl")
    assert _error(tmp_path / "export.csv") == (
        "export.csv: this is an Excel workbook (or another zip file), not CSV text, whatever its name says.\n"
        "  How to fix: Rename it to export.xlsx, or export the data again as CSV.")
    frame.to_parquet(tmp_path / "export.tsv")
    assert _error(tmp_path / "export.tsv").startswith("export.tsv: this is a Parquet file, not TSV text")


def test_a_json_object_of_columns_as_pandas_writes_it_is_read_as_rows(tmp_path):
    """df.to_json() writes one member per column, each keyed by row: read as records keyed by id, its 150 rows were
    150 columns and the advice was to pass --text "27a8b046a8a2"."""
    frame = pd.DataFrame({"text": [f"Parcel {i} came late and the box was crushed" for i in range(30)],
                          "date": [f"2026-01-{i % 28 + 1:02d}" for i in range(30)], "rating": [4] * 30},
                         index=[f"r{i:03d}" for i in range(30)])
    frame.to_json(tmp_path / "by_id.json")
    table = read_feedback_file(tmp_path / "by_id.json")
    assert table.columns == ["id", "text", "date", "rating"] and len(table.frame) == 30
    assert table.frame["id"].tolist()[:2] == ["r000", "r001"] and table.notes[0].startswith("Read the JSON object as columns")
    assert resolve_columns(table, ColumnMapping()).text == "text"
    frame.reset_index(drop=True).to_json(tmp_path / "numbered.json")  # row numbers 0, 1, …: no id column
    assert read_feedback_file(tmp_path / "numbered.json").columns == ["text", "date", "rating"]


def test_a_title_row_or_merged_cells_above_a_sheets_table_are_refused_naming_the_header_row(tmp_path):
    """As a CSV's title lines are: the header was read as a row of data, and its "date" was a date not understood."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Feedback export, November"])
    sheet.append([])
    sheet.append(["id", "date", "rating", "text"])
    for i in range(40):
        sheet.append([f"m{i}", f"2026-01-{i % 28 + 1:02d}", 4, f"Parcel {i} came late and the box was crushed"])
    sheet.merge_cells("A1:D1")
    book.save(tmp_path / "export.xlsx")
    assert _error(tmp_path / "export.xlsx") == (
        'export.xlsx, sheet "Sheet": row 1 names 1 of its 4 columns (\'Feedback export, November\'): a title or merged '
        "cells above the table. Its header seems to be row 3 ('id, date, rating, text').\n  How to fix: Delete the 2 "
        "rows above that header (and unmerge its cells), so that the column names are the first row.")


def test_a_text_column_of_records_is_refused_and_never_offered_as_the_messages(tmp_path):
    """A Parquet struct (or JSON object) column holds the messages' fields: read as the text, its JSON keys became
    topic words ("amazon · order · date") and its dates were ignored. The upload form offered it as the text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"Parcel {i} arrived late and the box was damaged,\nsecond line" for i in range(30)]
    table = pa.table({"id": [f"m{i}" for i in range(30)],
                      "payload": [{"text": t, "date": f"2026-01-{i % 28 + 1:02d}"} for i, t in enumerate(texts)]})
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    error = _error(path, ColumnMapping(text="payload"))
    assert error.startswith('nested.parquet: column "payload", read as the message text, holds records ({"text": '
                            '"Parcel 0 arrived late')
    assert error.endswith("How to fix: Save the file with the record's fields (text, date) as columns of their own (in "
                          "pandas: pd.json_normalize), then choose the one that holds the messages with --text.")
    raw = read_feedback_file(path)
    assert longest_text_column(raw.frame, raw.columns) is None  # the longest texts, but not messages


def test_a_text_column_of_many_wordless_messages_is_analysed_with_a_note(tmp_path):
    frame = pd.DataFrame({"comment": [f"Parcel {i} arrived late and damaged" for i in range(30)] +
                                     [str(40 + i) for i in range(10)]})
    table = read_feedback_file(_write(tmp_path, "f.csv", frame))
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert len(messages) == 40  # counted: a "10/10" is a customer's answer too
    assert report.notes == ['Column "comment", read as the message text: 10 of 40 messages have no words, only numbers '
                            'or codes (e.g. "40" at line 32): they are counted, but give their topics no keywords. If '
                            "the column is not the messages, pass --text with the column that holds the messages."]
    few = pd.DataFrame({"comment": [f"Parcel {i} arrived late and damaged" for i in range(60)] + ["10/10"] * 4})
    table = read_feedback_file(_write(tmp_path, "g.csv", few))
    assert clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())[1].notes == []


def test_a_text_column_of_a_few_categories_is_said_to_look_like_one(tmp_path):
    frame = pd.DataFrame({"comment": [f"Parcel {i} arrived late and damaged" for i in range(40)],
                          "channel": ["email", "app", "web", "web"] * 10})
    table = read_feedback_file(_write(tmp_path, "f.csv", frame))
    _, report = clean_messages(table, resolve_columns(table, ColumnMapping(text="channel")), Settings())
    assert report.notes == ['Column "channel", read as the message text, holds only 3 different texts in 40 messages '
                            '("web", "email", "app"): it looks like a category, not messages. Pass --text "comment" if '
                            'that column holds the messages.']
    table = read_feedback_file(_write(tmp_path, "g.csv", frame))
    _, report = clean_messages(table, resolve_columns(table, ColumnMapping(text="comment")), Settings())
    assert report.notes == []


def test_wrong_text_option_suggests_closest(tmp_path):
    path = _write(tmp_path, "f.csv")
    assert _error(path, ColumnMapping(text="coment")) == (
        "f.csv: there is no column \"coment\" (asked for by --text). The columns are: 'id', 'created_at', 'comment', "
        "'channel'.\n  How to fix: Did you mean \"comment\"? Pass --text with one of those names."
    )


def test_unparseable_dates_fail_with_rows_or_drop(tmp_path):
    frame = pd.DataFrame({"text": ["a fine message", "another message", "third one here", "fourth"],
                          "date": ["2024-01-01", "yesterday", "2024-01-03", "32/13/2024"]})
    path = _write(tmp_path, "d.csv", frame)
    assert _error(path) == (
        "d.csv, column \"date\": 2 of 4 values are not dates (first: line 3: 'yesterday'; line 5: '32/13/2024').\n"
        "  How to fix: Correct those values (e.g. 2024-05-31 or 2024-05-31T14:00:00+02:00), map another column with "
        "--date, or pass --on-bad-date drop to skip those messages."
    )
    table = read_feedback_file(path)
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings(on_bad_date="drop"))
    assert messages["text"].tolist() == ["a fine message", "third one here"]
    # A message over three lines: the bad date is on the record's third line, where an editor shows it.
    multi = tmp_path / "m.csv"
    multi.write_text('text,date\n"fine",2024-01-01\n"first line\nsecond line\r\nthird",2025-13-45\n', encoding="utf-8")
    assert "(first: line 5: '2025-13-45')" in _error(multi)
    multi.write_text('date,text\n2024-01-01,fine\n2025-13-45,"first line\nsecond"\n', encoding="utf-8")
    assert "(first: line 3: '2025-13-45')" in _error(multi)  # the date comes before the long text
    assert report.skipped == {'date not understood in column "date"': 2}
    # An empty date is no mistake (the message is kept without one), but it is said with the mistakes, so that
    # skipping them does not bring a surprise "Without a date 1" in the summary.
    blank = _write(tmp_path, "b.csv", frame.assign(date=["2024-01-01", "yesterday", "", "2024-01-04"]))
    assert _error(blank).endswith("--on-bad-date drop to skip those messages. (1 message with an empty date is kept, "
                                  "without a date.)")


def test_values_that_name_no_day_are_not_dates(tmp_path):
    """A time alone, "today" or a weekday would be read as the day the run happens (the general parser's default):
    a column of them would date every message today without a word. They are values that are not dates, and a column
    of times says so."""
    values = pd.Series(["10:00", "2:30 PM", "today", "now", "Monday", "T10:00Z", "March 2024", "01/03/2024 2:30 PM"])
    assert parse_dates(values).tolist() == [pd.NaT] * 6 + [pd.Timestamp("2024-03-01", tz="UTC"),
                                                          pd.Timestamp("2024-01-03 14:30", tz="UTC")]
    path = _write(tmp_path, "t.csv", pd.DataFrame({"text": ["late parcel", "kind staff"], "when": ["10:00", "11:30"]}))
    assert _error(path, ColumnMapping(date="when")).startswith(
        "t.csv, column \"when\": 2 of 2 values are not dates (first: line 2: '10:00'; line 3: '11:30'): "
        "times of day without a day.\n")


def test_lists_records_and_yes_no_metadata_read_as_people_write_them(tmp_path):
    """JSON and Parquet cells can hold lists, records and true/false: a list reads "a, b" and a record as JSON (not
    Python's or NumPy's repr), true/false read "Yes"/"No" (not 1.0/0.0, which a filter would offer as a range)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": "Refund was slow", "tags": ["refund", "slow"], "order": {"id": 7, "shop": "Köln"}, "verified": True},
            {"text": "Great app", "tags": [], "order": None, "verified": False},
            {"text": "Lost parcel", "tags": ["courier"], "order": {"id": 9}, "verified": None}]
    expected = {"tags": ["refund, slow", None, "courier"], "order": ['{"id": 7, "shop": "Köln"}', None, '{"id": 9}'],
                "verified": ["Yes", "No", None]}
    json_path = tmp_path / "f.jsonl"
    json_path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "f.parquet")
    for path in (json_path, tmp_path / "f.parquet"):
        table = read_feedback_file(path)
        messages, _ = clean_messages(table, resolve_columns(table, ColumnMapping(metadata=tuple(expected))), Settings())
        got = {c: messages[c].astype(object).where(messages[c].notna(), None).tolist() for c in expected}
        if path.suffix == ".parquet":  # a Parquet record (struct) has every field, missing ones null
            expected["order"][2] = '{"id": 9, "shop": null}'
        assert got == expected, path.name
    paragraphs = tmp_path / "p.jsonl"
    paragraphs.write_text(json.dumps({"text": ["Parcel came late.", "Box was crushed."]}) + "\n", encoding="utf-8")
    table = read_feedback_file(paragraphs)
    messages, _ = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert messages["text"].tolist() == ["Parcel came late.\nBox was crushed."]


def test_absurdly_long_fields_are_bounded_and_reported(tmp_path):
    frame = pd.DataFrame({"text": ["short one", "x" * 50_000]})
    path = _write(tmp_path, "long.csv", frame)
    table = read_feedback_file(path)
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings(max_message_chars=1000))
    assert messages["text"].str.len().max() == 1000
    assert report.truncated == 1
    assert report.notes == ["1 message longer than 1,000 characters was cut to that length (first at line 3); "
                            "raise --max-chars to keep more."]


def test_a_delimiter_ending_every_line_adds_no_column(tmp_path):
    """Some exports end each line with the delimiter (``id;text;``): the empty, unnamed last column is dropped,
    also where a line leaves it out. An unnamed column that holds values is still refused by name."""
    path = tmp_path / "t.csv"
    path.write_text("id;text;date;\n1;Parcel came late;2024-01-02;\n2;Kind staff;2024-01-03\n")
    table = read_feedback_file(path)
    assert table.columns == ["id", "text", "date"] and table.frame["text"].tolist() == ["Parcel came late", "Kind staff"]
    path.write_text("id,text,,date\n1,Parcel came late,x,2024-01-02\n")
    assert _error(path).startswith("t.csv, line 1: column 3 has no name.")


def test_utf16_files_read_as_excels_unicode_text_writes_them(tmp_path):
    """Excel's "Unicode Text" export is UTF-16 with a byte-order mark and tabs; some tools write UTF-16 without the
    mark. Both read like the UTF-8 file; a binary file (NULs everywhere) still gets the NUL-bytes message."""
    body = "id\ttext\tdate\r\n1\tParcel came late – sadly\t2024-01-02\r\n2\tKind staff\t2024-01-03\r\n"
    for name, data in (("excel.tsv", body.encode("utf-16")), ("plain.tsv", body.encode("utf-16-be")),
                       ("f.json", json.dumps(ROWS, ensure_ascii=False).encode("utf-16-le"))):
        path = tmp_path / name
        path.write_bytes(data)
        table = read_feedback_file(path)
        messages, _ = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
        assert messages["text"].iloc[0] in ("Parcel came late – sadly", ROWS[0]["comment"]) and table.notes == []
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\x89PNG" + bytes(range(256)) * 8)  # no kind it is often mistaken for (those are named)
    assert "contains NUL bytes" in _error(binary)


def test_nul_bytes(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"id,text\n1,ok\n2,\x00\x01\x02\n")
    assert _error(path) == (
        "bin.csv, line 3: contains NUL bytes, so it is not a text file.\n  How to fix: Check that this is the exported "
        "CSV/TSV and not a binary file renamed; export it again as UTF-8 text."
    )


def test_invalid_jsonl_line(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "broken"\n')
    assert _error(path) == (
        "f.jsonl, line 2, character 18: not valid JSON (Expecting ',' delimiter).\n"
        "  How to fix: Each line must be one complete JSON object; fix or remove that line."
    )


def test_broken_json_gives_the_whole_reason(tmp_path):
    # The decoder's "Unterminated string starting at" leaves the place to the text it appends; we name it.
    path = tmp_path / "f.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "broken\n')
    assert _error(path) == (
        "f.jsonl, line 2, character 10: not valid JSON (Unterminated string starting at character 10).\n"
        "  How to fix: Each line must be one complete JSON object; fix or remove that line."
    )
    path = tmp_path / "f.json"
    path.write_text('[{"text": "ok"},\n {"text": "tab\there"}]')
    assert _error(path).startswith("f.json, line 2, character 15: not valid JSON (Invalid control character at "
                                   "character 15).\n")


def test_a_column_named_for_one_role_is_not_detected_for_another(tmp_path):
    # "--text id": the id column cannot be switched off, so it must not be detected as "id" too.
    table = read_feedback_file(_write(tmp_path, "f.csv"))
    cols = resolve_columns(table, ColumnMapping(text="id"))
    assert (cols.text, cols.date, cols.id, cols.detected) == ("id", "created_at", None, ("date",))
    cols = resolve_columns(table, ColumnMapping(id="created_at"))
    assert (cols.text, cols.date, cols.id) == ("comment", None, "created_at")
    assert "would be both the text (detected from its name) and the id (--id)" in _error(
        table.path, ColumnMapping(id="comment"))


def test_corrupt_parquet_and_xlsx(tmp_path):
    for name, kind in (("bad.parquet", "Parquet"), ("bad.xlsx", "an Excel workbook")):
        path = tmp_path / name
        path.write_bytes(b"not really " * 10)
        assert _error(path).startswith(f"{name}: cannot be read as {kind}")


def test_normalise_dedupe_and_empty(tmp_path):
    frame = pd.DataFrame({
        "id": ["1", "2", "3", "4", "3"],
        "text": ["Great&amp;fast<br />delivery", "  ", "same words", "same words", "Updated text"],
        "date": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
    })
    table = read_feedback_file(_write(tmp_path, "n.csv", frame))
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    # A repeated id is a newer version of that message: the last one is kept.
    assert messages["text"].tolist() == ["Great&fast\ndelivery", "same words", "Updated text"]
    assert messages["message_id"].tolist() == ["1", "4", "3"]
    assert report.skipped == {"empty text": 1, 'repeated id in column "id" (kept the last)': 1}


def test_an_id_column_most_messages_share_is_refused_not_used_to_drop_them(tmp_path):
    """200 different complaints exported with one value in complaint_id: read as newer versions of one message,
    199 would go with no more than a count in the summary."""
    frame = pd.DataFrame({"complaint_id": ["X1"] * 200, "text": [f"Complaint {i} about a fee charged twice" for i in
                                                                  range(200)]})
    table = read_feedback_file(_write(tmp_path, "dupids.csv", frame))
    with pytest.raises(InputError) as err:
        clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert err.value.message == ('dupids.csv, column "complaint_id": not an id of each message. 199 of 200 messages '
                                 "share their id with a later one that says something else, so only 1 would be kept (a "
                                 "repeated id is read as a newer version of the same message).")
    assert err.value.fix.startswith('Name the column that holds a unique id of each message with --id; '
                                    '"complaint_id" was taken for it from its name')
    # A few newer versions (edited texts under their ids) are what repeated ids are for.
    frame.loc[:, "complaint_id"] = [f"C{i % 190}" for i in range(200)]
    table = read_feedback_file(_write(tmp_path, "edits.csv", frame))
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert len(messages) == 190
    # ... but said, naming the first: they may be different messages under one id.
    assert report.notes == ['10 messages shared their id (column "complaint_id") with a later row that says something '
                            'else, and only the later one was kept as the newer version (first: line 2, id "C0"). If '
                            "they are different messages, give them ids of their own."]


def test_exact_duplicates_without_ids(tmp_path):
    frame = pd.DataFrame({"text": ["Great service", "same words", "same words", "Great service"],
                          "date": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01"]})
    table = read_feedback_file(_write(tmp_path, "twice.csv", frame))
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    # The same record exported twice counts once; the same words on another day are another message.
    assert messages["text"].tolist() == ["Great service", "same words", "same words"]
    assert report.skipped == {"exact duplicate": 1}
    assert messages["message_id"].is_unique


def test_messages_without_an_id_get_one_from_their_content_and_are_said(tmp_path):
    frame = pd.DataFrame({"id": ["a1", "", "a3", None], "text": ["Great service", "Late parcel", "Rude staff",
                                                                  "Cold food"]})
    table = read_feedback_file(_write(tmp_path, "ids.csv", frame))
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert messages["message_id"].is_unique and messages["message_id"].tolist()[0] == "a1"
    assert report.notes == ['2 messages had no id in column "id" (first at line 3): they were given ids made from the '
                            "text, date and details, so a later export of the same message keeps its id only if it is "
                            "unchanged."]


def test_plain_texts_skip_normalising_without_changing_the_result(sample_frame, monkeypatch):
    from pipelines import clean

    texts = sample_frame["text"].astype(str).tolist() + [
        "a  b", " a", "a ", "a\n b", "a \nb", "a\n\n\nb", "a<br>b", "a&amp;b", "tab\there", "x\r\ny", "\x07bell",
        "ok\n\nfine", "ﬁne", "", "plain text, 100% fine; ok?"]
    quick = [normalise_text(t) for t in texts]
    assert sum(clean._plain(t) for t in texts) > len(texts) / 3  # the shortcut is taken often
    monkeypatch.setattr(clean, "_plain", lambda text: False)
    assert quick == [normalise_text(t) for t in texts]


def test_ascii_texts_normalise_as_the_general_path_does(sample_frame):
    """ASCII texts take string methods instead of NFKC and regular expressions: the same result."""
    from pipelines import clean

    texts = sample_frame["text"].astype(str).tolist() + [
        "a\t\tb", " \t x", "x\r\ny\rz", "a\x0b\x0cb", "\x00\x1f", "tab\t", "a &amp;  b<br/>c<BR >d", "a\n \n\n b",
        "\n\n\n", "&#9;tab entity", "a\x1c\x1db", "a&lt;br&gt;b", "      many     spaces       ", "a \t \t b"]
    ascii_texts = [t for t in texts if t.isascii() and not clean._plain(t)]
    assert len(ascii_texts) > len(texts) / 3
    for text in ascii_texts:
        unescaped = html.unescape(clean.strip_html(text))
        expected = clean._normalise_unicode(unescaped)  # the general path: NFKC and the regular expressions
        assert normalise_text(text) == expected, text
    assert normalise_text("&nbsp;x\u00a0 y") == "x y"  # an entity that decodes to a non-ASCII space


def test_normalise_text_unicode_and_spaces():
    assert normalise_text("ﬁne\u00a0\u00a0 service\t\r\n\r\n\r\nthanks") == "fine service\n\nthanks"
    assert normalise_text(None) == ""


def test_parse_dates_zones_and_epochs():
    values = pd.Series(["2024-03-10T12:00:00+02:00", "2024-03-10 12:00", "1710072000", "", None, "0001-01-01"])
    parsed = parse_dates(values, "Europe/Paris")
    assert parsed.iloc[0] == pd.Timestamp("2024-03-10 10:00", tz="UTC")
    assert parsed.iloc[1] == pd.Timestamp("2024-03-10 11:00", tz="UTC")  # Paris is UTC+1 in March
    assert parsed.iloc[2] == pd.Timestamp("2024-03-10 12:00", tz="UTC")
    assert parsed.iloc[3:].isna().all()


def test_excel_serial_dates_read_as_days_and_small_numbers_are_not_dates(tmp_path):
    """A CSV saved from Excel may hold its day numbers (45123 = 16 Jul 2023, .75 = 6 pm, in the run's zone); as
    epoch seconds they would all be 1 Jan 1970. A small number (an id or a rating mapped as the date by mistake) is
    no date either, and the run says so instead of dating messages in 1970."""
    assert parse_dates(pd.Series(["45123", "45123.75", 1710072000])).tolist() == [
        pd.Timestamp("2023-07-16", tz="UTC"), pd.Timestamp("2023-07-16 18:00", tz="UTC"),
        pd.Timestamp("2024-03-10 12:00", tz="UTC")]
    assert parse_dates(pd.Series(["45123.75"]), "Europe/Paris").iloc[0] == pd.Timestamp("2023-07-16 16:00", tz="UTC")
    path = _write(tmp_path, "ids.csv", pd.DataFrame({"text": ["late parcel", "kind staff"], "ref": ["17", "4"]}))
    assert "2 of 2 values are not dates (first: line 2: '17'; line 3: '4')" in _error(path, ColumnMapping(date="ref"))


def test_excel_day_numbers_among_written_dates_are_noted(tmp_path):
    """A sheet where some cells lost their date format is saved with 45200 beside 2026-09-16: read as 1 Oct 2023,
    which may be right, so the run says so and where, rather than refusing or saying nothing."""
    dates = ["45200", "2026-09-16T12:09:15Z", "2026-10-08", "45201.5"]
    frame = pd.DataFrame({"text": [f"parcel {i} arrived late" for i in range(4)], "date": dates})
    _, messages, report = _clean(_write(tmp_path, "mixed.csv", frame))
    assert messages["date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-10-01", "2026-09-16", "2026-10-08", "2023-10-02"]
    assert ('Column "date": 2 values are Excel day numbers among 2 written dates (first: line 2: 45200, read as '
            "1 Oct 2023). Check that they are dates; formatting the column as dates in the spreadsheet before saving "
            "writes every row alike.") in report.notes
    for alike in (["45200", "45230"], ["2026-09-16", "2026-10-08"]):  # all day numbers, or none: nothing to say
        frame = pd.DataFrame({"text": ["parcel late", "kind staff"], "date": alike})
        _, _, report = _clean(_write(tmp_path, "alike.csv", frame))
        assert not [n for n in report.notes if "Excel" in n], alike


def test_times_in_the_hours_clocks_change_are_read_not_refused():
    """A helpdesk in Los Angeles opens tickets at 1:30 am on 1 Nov 2026 (that hour happens twice: read as the first,
    PDT) and at 2:30 am on 8 Mar 2026 (that hour never happens: read as 3:00 am PDT). Neither stops the run."""
    values = pd.Series(["11/01/2026 01:30 AM", "03/08/2026 02:30 AM", "11/01/2026 02:00 AM"])
    assert parse_dates(values, "America/Los_Angeles").tolist() == [
        pd.Timestamp("2026-11-01 08:30", tz="UTC"), pd.Timestamp("2026-03-08 10:00", tz="UTC"),
        pd.Timestamp("2026-11-01 10:00", tz="UTC")]
    # Excel and Parquet give dates already parsed, without a zone: the same rule.
    cells = pd.Series(pd.to_datetime(["2026-11-01 01:30", "2026-03-08 02:30"]))
    assert parse_dates(cells, "America/Los_Angeles").tolist() == [
        pd.Timestamp("2026-11-01 08:30", tz="UTC"), pd.Timestamp("2026-03-08 10:00", tz="UTC")]


def test_times_without_a_zone_read_as_utc_are_said_to_be(tmp_path):
    """A helpdesk export's local times ("09/14/2026 11:40 PM") read as UTC put late tickets on the next day: the run
    says so and how to give the zone. Dates alone, times with a zone, or a zone given: nothing to say."""
    path = tmp_path / "tickets.csv"

    def notes(dates: list[str], zone: str = "UTC") -> list[str]:
        pd.DataFrame({"text": [f"ticket {i} about a refund" for i in range(len(dates))], "date": dates}).to_csv(
            path, index=False)
        table = read_feedback_file(path)
        _, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings(assume_timezone=zone))
        return [n for n in report.notes if "time zone" in n]

    local = ["09/14/2026 11:40 PM", "09/15/2026 08:05 AM", "09/15/2026"]
    assert notes(local) == ['Column "date": 2 times of day without a time zone were read as UTC; if they are local '
                            "times, give your zone with --timezone (e.g. --timezone America/New_York), so that days "
                            "are yours."]
    assert notes(local, "America/Los_Angeles") == []
    assert notes(["2026-09-14", "2026-09-15"]) == []
    assert notes(["2026-09-14T23:40:00Z", "2026-09-15T08:05:00+02:00"]) == []


def test_records_without_text_are_skipped_and_named_by_line(tmp_path):
    # A JSON Lines export where 3 of 60 records lack the mapped text field: skipped, not failed, and findable.
    path = tmp_path / "chats.jsonl"
    records = [{"conversation_id": f"c{i}", "body": f"Message number {i} about delivery"} for i in range(1, 61)]
    for line in (12, 30, 45):
        del records[line - 1]["body"]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    table = read_feedback_file(path)
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping(text="body")), Settings())
    assert len(messages) == 57
    assert report.skipped == {"empty text": 3}
    assert ('3 messages without text skipped (field "body" missing or empty), first at lines 12, 30, 45.'
            in report.notes)


def test_records_without_text_name_the_first_three_rows(tmp_path):
    frame = pd.DataFrame({"text": ["ok one", "", "ok two", " ", "ok three", None, "", "ok four"], "channel": ["app"] * 8})
    table = read_feedback_file(_write(tmp_path, "n.xlsx", frame))
    _, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    # Spreadsheet rows count the header as row 1, as the spreadsheet shows them.
    assert report.notes == ['4 messages without text skipped (field "text" missing or empty), '
                            "first at rows 3, 5, 7."]


def test_numbers_written_with_decimal_or_thousands_commas_are_numbers(tmp_path):
    """A German export (semicolons, ratings of 4,5, prices of 1.234,50) gives numeric ratings, which the expectation
    gaps use for importance; English thousands (1,234.50) too. "1,234" alone could be either and stays as written."""
    path = tmp_path / "de.csv"
    path.write_text("ID;Kommentar;Bewertung;Preis;Menge\n1;Lieferung kam zu spät;4,5;1.234,50;1,234\n"
                    "2;Sehr freundlicher Service;2,0;99,90;2,500\n3;Rückerstattung dauert ewig;1;10;3,000\n",
                    encoding="utf-8-sig")
    table = read_feedback_file(path)
    messages, _ = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert messages["Bewertung"].tolist() == [4.5, 2.0, 1.0] and messages["Preis"].tolist() == [1234.5, 99.9, 10.0]
    assert messages["Menge"].tolist() == ["1,234", "2,500", "3,000"]
    english = _write(tmp_path, "en.csv", pd.DataFrame({"text": ["a b", "c d"], "amount": ["1,234.50", "12"]}))
    table = read_feedback_file(english)
    messages, _ = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert messages["amount"].tolist() == [1234.5, 12.0]


def test_a_workbook_is_read_from_its_first_sheet_with_rows_and_says_what_it_left(tmp_path):
    """A cover sheet of notes is passed over (not "no rows"); other sheets with rows are named, as they are not read.
    Cells reading "NA" (North America) or "None of it arrived" are text, as in a CSV file; a failed formula (#N/A,
    #DIV/0!) is no value."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Read me"
    book.active.append(["Exported from the helpdesk on 1 March 2026"])
    data = book.create_sheet("March")
    data.append(["text", "region", "score"])
    for row in (["None of it arrived", "NA", 4], ["Courier was kind", "EU", "#DIV/0!"], ["#N/A", "NA", 2]):
        data.append(row)
    book.create_sheet("April").append(["text", "region"])
    book["April"].append(["Refund never came", "EU"])
    path = tmp_path / "w.xlsx"
    book.save(path)
    table = read_feedback_file(path)
    assert table.notes == [
        'Read sheet "March"; passed over "Read me" (no rows below a header) before it: a cover or notes sheet, not '
        'the feedback.',
        'Only sheet "March" was read; the workbook\'s other sheets with rows ("April") were not. Choose one with '
        "--sheet (sheet: in a mapping file), put their rows in one sheet, or save each as its own file and add it "
        "with --add."]
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert messages["text"].tolist() == ["None of it arrived", "Courier was kind"]
    assert messages["region"].tolist() == ["NA", "EU"] and messages["score"].isna().tolist() == [False, True]
    assert report.notes == ['1 message without text skipped (field "text" missing or empty), first at row 4.']


def test_a_named_sheet_is_read_and_a_missing_one_names_the_sheets_there_are(tmp_path):
    """--sheet (Settings.sheet) reads that sheet, whatever comes before it; its case and spaces around it are
    forgiven; a name the workbook lacks is refused with its sheets and the closest one. Other formats ignore it."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "March"
    book.active.append(["text", "region"])
    book.active.append(["Courier was kind", "EU"])
    book.create_sheet("April 2026").append(["text", "region"])
    for row in (["Refund never came", "EU"], ["Box was crushed", "NA"]):
        book["April 2026"].append(row)
    path = tmp_path / "w.xlsx"
    book.save(path)
    for name in ("April 2026", " april 2026 "):
        table = read_feedback_file(path, sheet=name)
        assert table.frame["text"].tolist() == ["Refund never came", "Box was crushed"] and table.notes == []
        assert table.frame["_row"].tolist() == [2, 3]  # rows as the sheet numbers them, for errors
    assert read_feedback_file(path).frame["text"].tolist() == ["Courier was kind"]
    with pytest.raises(InputError) as err:
        read_feedback_file(path, sheet="Apirl 2026")
    assert str(err.value).startswith('w.xlsx: the workbook has no sheet named "Apirl 2026"; its sheets are "March", '
                                     '"April 2026".')
    assert err.value.fix.startswith('Did you mean "April 2026"? Give one of those names with --sheet')
    book.create_sheet("Notes").append(["text", "region"])  # a header and nothing below it
    book.save(path)
    with pytest.raises(InputError) as err:
        read_feedback_file(path, sheet="Notes")
    assert err.value.message == 'w.xlsx, sheet "Notes": no rows below its header.' and err.value.fix == (
        'Choose the sheet that holds the messages ("March", "April 2026").')
    csv_path = tmp_path / "f.csv"
    csv_path.write_text("text\nFine\n", encoding="utf-8")
    assert read_feedback_file(csv_path, sheet="April").frame["text"].tolist() == ["Fine"]


def test_a_workbook_whose_first_sheet_is_a_few_lines_of_notes_is_read_from_its_data_sheet(tmp_path):
    """An export with an "About" sheet of two notes before 40 complaints: the notes are not the feedback."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "About"
    for line in (["Notes"], ["Export of September"], ["Dates are UK time"]):
        book.active.append(line)
    data = book.create_sheet("Complaints")
    data.append(["Complaint ID", "Consumer complaint narrative"])
    for i in range(40):
        data.append([f"C{i}", f"Complaint number {i}: the bank charged a fee twice and never answered my letters."])
    path = tmp_path / "sept.xlsx"
    book.save(path)
    table = read_feedback_file(path)
    assert len(table.frame) == 40 and "Consumer complaint narrative" in table.frame.columns
    assert table.notes == ['Read sheet "Complaints"; passed over "About" (2 rows) before it: a cover or notes sheet, '
                           "not the feedback."]


@pytest.mark.parametrize("column", ["ticket_id", "review_id", "message_id", "Message ID", "case_id", "case_number"])
def test_chat_ticket_and_review_id_columns_are_detected(tmp_path, column):
    table = read_feedback_file(_write(tmp_path, "t.csv", pd.DataFrame({column: ["a", "b"], "text": ["hi", "yo"]})))
    cols = resolve_columns(table, ColumnMapping())
    assert cols.id == column and "id" in cols.detected and cols.metadata == ()


@pytest.mark.parametrize("column", ["conversation_id", "Conversation ID", "chat_id", "thread_id"])
def test_a_conversation_id_is_not_taken_as_the_message_id(tmp_path, column):
    # A chat export: a row per message, several under one conversation. As the id, a repeated value would keep
    # only each conversation's last message; as metadata every message stays and the column filters.
    frame = pd.DataFrame({column: ["c1", "c1", "c2"], "text": ["Where is my order?", "Still waiting.", "Thanks!"]})
    table = read_feedback_file(_write(tmp_path, "t.csv", frame))
    cols = resolve_columns(table, ColumnMapping())
    assert cols.id is None and cols.metadata == (column,)
    messages, _ = clean_messages(table, cols, Settings())
    assert messages["text"].tolist() == frame["text"].tolist()


def test_a_message_id_is_preferred_to_the_conversation_it_belongs_to(tmp_path):
    frame = pd.DataFrame({"conversation_id": ["c1", "c1"], "message_id": ["m1", "m2"], "text": ["hi", "yo"]})
    cols = resolve_columns(read_feedback_file(_write(tmp_path, "t.csv", frame)), ColumnMapping())
    assert cols.id == "message_id" and cols.metadata == ("conversation_id",)


def test_a_txt_file_is_refused_instead_of_losing_its_first_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("The app is great\nBut it crashes on login\n")
    assert _error(path) == (
        "notes.txt: a .txt file is not read, because plain text has no columns (its first line would be taken as "
        "the column names and that message lost).\n  How to fix: Save the messages as CSV with a header row, e.g. "
        'one column named "text" and one message per row, in a .csv file. If the file already is a table with a '
        "header row (comma- or tab-separated), rename it to .csv or .tsv."
    )


def test_one_record_without_text_is_named_in_the_singular(tmp_path):
    frame = pd.DataFrame({"text": ["ok one", "", "ok two"], "channel": ["app"] * 3})
    table = read_feedback_file(_write(tmp_path, "n.csv", frame))
    _, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert report.notes == ['1 message without text skipped (field "text" missing or empty), first at line 3.']


def test_the_same_message_under_two_ids_is_kept_and_said(tmp_path):
    frame = pd.DataFrame({"id": ["app-1", "app-2", "app-2-dup", "app-3"],
                          "text": ["Love it", "i haven't quite figured this one out yet", "i haven't quite figured "
                                   "this one out yet", "Crashes daily"], "date": ["2026-09-01"] * 4})
    table = read_feedback_file(_write(tmp_path, "d.csv", frame))
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert messages["message_id"].tolist() == ["app-1", "app-2", "app-2-dup", "app-3"]  # different ids: both count
    assert report.notes == ["1 message repeats another message's text, date and details under a different id "
                            "(first at line 4); both are kept and counted. If they are copies, remove them from the "
                            'file (or map another id column than "id").']


def _german_csv(tmp_path: Path, dates: list[str], name: str = "beschwerden.csv", column: str = "Eingangsdatum") -> Path:
    """A German bank's semicolon export: day-first dates with dots, German column names."""
    path = tmp_path / name
    lines = [f"Vorgangsnummer;{column};Beschwerdetext"]
    lines += [f"V{i};{d};Beschwerde Nummer {i} zur Kontoführung" for i, d in enumerate(dates, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _clean(path: Path, settings: Settings | None = None, mapping: ColumnMapping | None = None):
    table = read_feedback_file(path)
    columns = resolve_columns(table, mapping or ColumnMapping())
    return (columns, *clean_messages(table, columns, settings or Settings()))


def test_day_first_dates_with_dots_are_all_read_day_first(tmp_path):
    # The bank PM's file: 01.11.2026 used to become 10 Jan, 12.11.2026 11 Dec. 13.11.2026 proves the order.
    columns, messages, report = _clean(_german_csv(tmp_path, ["01.11.2026", "12.11.2026", "13.11.2026 14:30"]))
    assert columns.date == "Eingangsdatum" and "date" in columns.detected
    assert columns.id == "Vorgangsnummer" and "id" in columns.detected  # German names for the id too
    assert messages["date"].tolist() == [pd.Timestamp("2026-11-01", tz="UTC"), pd.Timestamp("2026-11-12", tz="UTC"),
                                         pd.Timestamp("2026-11-13 14:30", tz="UTC")]
    assert not [n for n in report.notes if "first" in n]  # proved: nothing to say
    # Every date could be either: dots are day first everywhere they are used, and the run says so.
    _, messages, report = _clean(_german_csv(tmp_path, ["01.11.2026", "02.11.2026", "05.10.2026"]),
                                 Settings(assume_timezone="Europe/Berlin"))
    assert messages["date"].dt.tz_convert("Europe/Berlin").dt.strftime("%d %b").tolist() == ["01 Nov", "02 Nov", "05 Oct"]
    assert ('Column "Eingangsdatum": dates like 01.11.2026 were read day first (1 Nov 2026); if they are month '
            "first, use --date-order month-first.") in report.notes


def test_slash_dates_stay_month_first_unless_a_date_proves_day_first(tmp_path):
    frame = pd.DataFrame({"text": ["late refund", "app crashed", "card blocked"],
                          "Created": ["03/11/2026", "04/01/2026", "11/03/2026 2:30 PM"]})
    _, messages, report = _clean(_write(tmp_path, "us.csv", frame), mapping=ColumnMapping(date="Created"))
    assert messages["date"].dt.strftime("%Y-%m-%d %H:%M").tolist() == ["2026-03-11 00:00", "2026-04-01 00:00",
                                                                       "2026-11-03 14:30"]
    assert ('Column "Created": dates like 03/11/2026 were read month first (11 Mar 2026); if they are day first, '
            "use --date-order day-first.") in report.notes
    frame["Created"] = ["03/11/2026", "25/11/2026", "11-03-26"]  # 25/11 can only be day first: so are the others
    _, messages, report = _clean(_write(tmp_path, "uk.csv", frame), mapping=ColumnMapping(date="Created"))
    assert messages["date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-11-03", "2026-11-25", "2026-03-11"]
    assert not [n for n in report.notes if "first" in n]


def test_dates_proving_both_orders_are_refused_with_a_line_of_each(tmp_path):
    path = _german_csv(tmp_path, ["01.11.2026", "13.11.2026", "02.11.2026", "11/28/2026"])
    assert _error(path) == (
        'beschwerden.csv, column "Eingangsdatum": some dates are written day first and others month first '
        "(line 3: '13.11.2026' can only be day first; line 5: '11/28/2026' can only be month first), so a date such "
        "as 03/11/2026 cannot be read safely.\n"
        "  How to fix: Write every date the same way (best as 2026-11-03), or say how to read them with --date-order "
        "day-first or --date-order month-first (date_order in a mapping file); dates that do not fit that order are "
        "then reported as dates not understood.")
    # Told the order, the run reads it; the date that cannot be day first is a date not understood, like any other.
    assert "1 of 4 values are not dates (first: line 5: '11/28/2026')" in _error(path, settings=Settings(date_order="day-first"))
    _, messages, report = _clean(path, Settings(date_order="day-first", on_bad_date="drop"))
    assert messages["date"].dt.strftime("%d.%m.%Y").tolist() == ["01.11.2026", "13.11.2026", "02.11.2026"]
    _, messages, _ = _clean(_german_csv(tmp_path, ["01.11.2026", "02.11.2026"]), Settings(date_order="month-first"))
    assert messages["date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-11", "2026-02-11"]


def test_a_file_cleaned_in_parts_reads_one_date_order(tmp_path):
    # A part without a proof of its own (the first two rows) is read as the whole column proves: day first.
    from pipelines.executor import LocalExecutor, clean_partitioned

    path = _german_csv(tmp_path, ["03/11/2026", "04/11/2026", "05/11/2026", "25/11/2026"])
    table = read_feedback_file(path)
    columns = resolve_columns(table, ColumnMapping())
    whole, report = clean_messages(table, columns, Settings())
    parts, part_report = clean_partitioned(table, columns, Settings(), LocalExecutor(), 2)
    pd.testing.assert_frame_equal(parts, whole)
    assert whole["date"].dt.strftime("%d %b").tolist() == ["03 Nov", "04 Nov", "05 Nov", "25 Nov"]
    assert part_report.notes == report.notes


def test_the_date_column_is_found_by_its_values_when_its_name_says_nothing(tmp_path):
    frame = pd.DataFrame({"Kommentar": ["Die Überweisung kam nicht an", "Gebühren zu hoch", "App stürzt ab"],
                          "Bewertung": [1, 2, 5], "Kundennummer": ["4711", "4712", "4713"],
                          "Zeitpunkt": ["01.11.2026 09:15", "02.11.2026 10:00", "13.11.2026 11:45"]})
    columns, messages, _ = _clean(_write(tmp_path, "k.csv", frame), mapping=ColumnMapping(text="Kommentar"))
    # Ratings and customer numbers would read as epoch seconds: plain numbers are not dates.
    assert columns.date == "Zeitpunkt" and columns.date_from_values
    assert "(auto-detected: date (from its values))" in columns.describe()
    assert messages["date"].dt.strftime("%d.%m.%Y").tolist() == ["01.11.2026", "02.11.2026", "13.11.2026"]
    no_dates = frame.assign(Zeitpunkt=["morgens", "abends", "mittags"])
    columns, _, _ = _clean(_write(tmp_path, "n.csv", no_dates), mapping=ColumnMapping(text="Kommentar"))
    assert columns.date is None and "date" not in columns.detected
    for name in ("Datum", "Fecha de creación", "Date de création"):  # other languages' names
        columns = resolve_columns(read_feedback_file(_write(tmp_path, "x.csv", frame.rename(columns={"Zeitpunkt": name}))),
                                  ColumnMapping(text="Kommentar"))
        assert (columns.date, columns.date_from_values) == (name, False)


def test_dates_after_today_are_noted_with_the_first_line(tmp_path):
    soon = pd.Timestamp.now() + pd.Timedelta(days=400)
    dates = ["01.11.2025", soon.strftime("%d.%m.%Y"), "02.11.2025", (soon + pd.Timedelta(days=3)).strftime("%d.%m.%Y")]
    _, messages, report = _clean(_german_csv(tmp_path, dates))
    assert len(messages) == 4  # a note, not an error
    assert (f"2 dates are after today (first: line 3: {dates[1]}): check the date order (--date-order) and that "
            'column "Eingangsdatum" holds when the messages were written.') in report.notes
    _, _, report = _clean(_german_csv(tmp_path, dates[:1] + dates[2:3]))
    assert not [n for n in report.notes if "after today" in n]


def test_html_from_helpdesk_exports_becomes_plain_text():
    """Zendesk and e-mail bodies hold HTML: its tags would become topic words ("div", "nbsp"). Block tags become
    line breaks, inline ones nothing, scripts and comments go; what merely looks like a tag stays as written."""
    assert normalise_text("<div><p>Parcel <b>never</b> came.</p><p>Refund&nbsp;please</p></div>") == \
        "Parcel never came.\n\nRefund please"
    assert normalise_text('<table><tr><td>Order</td><td>late</td></tr></table><a href="x">track</a>') == \
        "Order late\n\ntrack"
    assert normalise_text("<!-- mso --><style>p{color:red}</style><script>x()</script>Thanks<o:p></o:p>") == "Thanks"
    for text in ("I <3 this shop", "a < b and c > d", "write to <ann@example.com>", "if a <b then c> d",
                 "&lt;p&gt; is a tag"):
        assert normalise_text(text) == text.replace("&lt;", "<").replace("&gt;", ">")


def test_zone_abbreviations_in_dates_read_as_their_offsets(tmp_path):
    """US and European exports write "3:45 PM PST" or "15:45 CET": read at that offset, whatever --timezone says.
    CST and IST name several zones each: refused with the reason and how to write the offset."""
    values = pd.Series(["Jan 5, 2024 3:45 PM PST", "2024-01-05 15:45 EDT", "05.01.2024 15:45 CET",
                        "2024-01-05 15:45 (BST)", "2024-01-05 15:45"])
    assert parse_dates(values, "America/New_York").tolist() == [
        pd.Timestamp("2024-01-05 23:45", tz="UTC"), pd.Timestamp("2024-01-05 19:45", tz="UTC"),
        pd.Timestamp("2024-01-05 14:45", tz="UTC"), pd.Timestamp("2024-01-05 14:45", tz="UTC"),
        pd.Timestamp("2024-01-05 20:45", tz="UTC")]
    named = _write(tmp_path, "n.csv", pd.DataFrame({"text": ["late", "kind"], "date": ["Jan 5, 2024 3:45 PM PST"] * 2}))
    table = read_feedback_file(named)
    _, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    assert report.notes == []  # no "times without a time zone" note: PST is one
    path = _write(tmp_path, "z.csv", pd.DataFrame({"text": ["late", "kind"], "date": ["2024-01-05 15:45 CST"] * 2}))
    assert _error(path) == (
        "z.csv, column \"date\": 2 of 2 values are not dates (first: line 2: '2024-01-05 15:45 CST'; line 3: "
        "'2024-01-05 15:45 CST'): CST and IST each name several time zones (US Central or China; India, Ireland or "
        "Israel).\n  How to fix: Write the zone as an offset (2024-05-31 14:00 -06:00), map another column with "
        "--date, or pass --on-bad-date drop to skip those messages.")


def test_signature_and_template_lines_many_messages_repeat_are_left_out(tmp_path):
    """E-mail bodies end in "Sent from my iPhone" and helpdesks add template lines: in every message, their words
    would make topics. A line in at least 2% (and 20) of the messages is left out, with a note; a message made only
    of such lines stays whole, and a line that only a few messages share (a reviewer's name) stays."""
    texts = [f"Hello,<p>Parcel {i} came late, again.</p><p>Please refund.</p><p>Order {i}</p><br>Sent from my iPhone"
             for i in range(40)]
    texts += ["Sent from my iPhone", "Great service\nAnn Smith", "Kind staff\nAnn Smith"]
    texts += [f"Plain review number {i}" for i in range(60)]
    path = _write(tmp_path, "mail.csv", pd.DataFrame({"text": texts}))
    table = read_feedback_file(path)
    messages, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings())
    # "Please refund." is in as many messages, but in their middle: the customer's words stay.
    assert messages["text"].iloc[0] == "Parcel 0 came late, again.\n\nPlease refund.\n\nOrder 0"
    assert messages["text"].iloc[40:43].tolist() == ["Sent from my iPhone", "Great service\nAnn Smith",
                                                    "Kind staff\nAnn Smith"]
    assert messages["text_hash"].iloc[0] == text_hash(messages["text"].iloc[0])
    assert report.notes == ['Lines repeated at the start or end of many messages were left out as signatures or '
                            'templates: "Hello," (40 messages); "Sent from my iPhone" (40 messages) '
                            "(--keep-repeated-lines keeps them)."]
    kept, report = clean_messages(table, resolve_columns(table, ColumnMapping()), Settings(remove_repeated_lines=False))
    assert kept["text"].iloc[0].endswith("Sent from my iPhone") and report.notes == []


def test_a_surveymonkey_second_header_row_is_no_message(tmp_path):
    """SurveyMonkey writes a second header row naming each answer's kind ("Open-Ended Response"): skipped with a
    note, in CSV and Excel, and the rows keep their own numbers."""
    frame = pd.DataFrame({"Respondent ID": ["", "11", "12"], "Start Date": ["", "01/05/2026", "01/06/2026"],
                          "What could we do better?": ["Open-Ended Response", "Faster refunds please", "Kinder staff"]})
    for name in ("survey.csv", "survey.xlsx"):
        table = read_feedback_file(_write(tmp_path, name, frame))
        messages, report = clean_messages(
            table, resolve_columns(table, ColumnMapping(text="What could we do better?", date="Start Date",
                                                        id="Respondent ID")), Settings())
        assert messages["text"].tolist() == ["Faster refunds please", "Kinder staff"], name
        assert messages["source_row"].tolist() == [3, 4] and table.notes[0].startswith("The row below the header was")
