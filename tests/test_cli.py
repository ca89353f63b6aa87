"""CLI pieces that need no model: the mapping file, the dashboard's server flags, user mistakes found before
embedding, and progress lines; and (slow, with the real model) several files analysed in one command."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import load_mapping_file, main, streamlit_flags
from pipelines.errors import FeedbackLensError
from pipelines.progress import TerminalReporter

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "fine_food_reviews.csv"


def test_mapping_file_reads_keys(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("text: body\ndate: created\nmetadata: [channel, product]\non_bad_date: drop\n")
    assert load_mapping_file(path) == {"text": "body", "date": "created", "metadata": ["channel", "product"],
                                       "on_bad_date": "drop"}


def test_malformed_mapping_file_names_the_line(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("text: body\ndate: [unclosed\nid: x\n")
    with pytest.raises(FeedbackLensError) as info:
        load_mapping_file(path)
    assert str(info.value).startswith("m.yaml, line 3: ")
    assert "How to fix: Write one \"key: value\" per line" in str(info.value)


def test_mapping_file_unknown_key(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("txt: body\n")
    with pytest.raises(FeedbackLensError) as info:
        load_mapping_file(path)
    assert str(info.value) == ("m.yaml: unknown key(s) txt.\n  How to fix: Use only: date, date_order, id, metadata, "
                               "note, on_bad_date, sheet, tags, text, timezone.")


def test_streamlit_flags_keep_localhost_and_xsrf_and_yield_to_env():
    flags = streamlit_flags(environ={})
    assert "--server.address=localhost" in flags
    assert "--server.enableXsrfProtection=true" in flags
    assert "--server.port=8501" in flags
    overridden = streamlit_flags(environ={"STREAMLIT_SERVER_PORT": "9999"})
    assert not any(f.startswith("--server.port=") for f in overridden)


# --- user mistakes in analyse and snapshot: a clear error, exit 1, no traceback -------------------------------

TZ_FIX = "Use a tz database name such as Europe/Paris, America/New_York or UTC, or an offset such as +02:00."


def _analyse(tmp_path, *argv: str) -> int:
    return main(["analyse", *argv, "--store", str(tmp_path / "store")])


def _small_csv(tmp_path, rows: int = 10) -> Path:
    """Real reviews with a date column without a zone, as exports often have."""
    frame = pd.read_csv(SAMPLE, nrows=rows)
    frame = pd.DataFrame({"review_id": [f"r{i}" for i in range(rows)], "text": frame["text"],
                          "date": [f"2024-03-{i % 28 + 1:02d} 10:30" for i in range(rows)]})
    path = tmp_path / "few.csv"
    frame.to_csv(path, index=False)
    return path


def test_mistyped_timezone_is_refused_before_reading_the_file(tmp_path, capsys):
    # The file does not exist: the zone must be checked first, not at the first date without a zone.
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--timezone", "Europe/Pariss", "--quiet") == 1
    assert capsys.readouterr().err == ('Error: --timezone "Europe/Pariss" is not a time zone.\n'
                                       f"  How to fix: Did you mean Europe/Paris? {TZ_FIX}\n")
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--timezone", "Europe/Paris", "--quiet") == 1
    assert "nowhere.csv: file not found" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_mapping_file_timezone_names_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("text: text\n\ntimezone: Mars/Olympus\n")
    with pytest.raises(FeedbackLensError) as info:
        load_mapping_file(path)
    assert str(info.value) == f'm.yaml, line 3: timezone "Mars/Olympus" is not a time zone.\n  How to fix: {TZ_FIX}'
    path.write_text("text: text\ntimezone: europe/paris\n")
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--mapping", str(path), "--quiet") == 1
    err = capsys.readouterr().err
    assert err.startswith('Error: m.yaml, line 2: timezone "europe/paris" is not a time zone.\n')
    assert "Did you mean Europe/Paris?" in err and "Traceback" not in err
    path.write_text("text: text\ntimezone: Europe/Paris\n")
    assert load_mapping_file(path)["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(("zone", "meant"), [("PST", "America/Los_Angeles"), ("Pacific Time", "America/Los_Angeles"),
                                             ("eastern", "America/New_York"), ("CDT", "America/Chicago")])
def test_what_people_call_their_zone_is_suggested_as_its_name(tmp_path, capsys, zone, meant):
    # Not the nearest spelling: "PST" used to suggest MST (no daylight saving), "Pacific Time" Pacific/Niue.
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--timezone", zone, "--quiet") == 1
    assert capsys.readouterr().err == (f'Error: --timezone "{zone}" is not a time zone.\n'
                                       f"  How to fix: Did you mean {meant}? {TZ_FIX}\n")


def test_a_fixed_offset_written_for_a_zone_with_daylight_saving_is_refused(tmp_path, capsys):
    # "EST" is a tz database name, but a fixed -05:00: New York's summer tickets would all be an hour off.
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--timezone", "EST", "--quiet") == 1
    err = capsys.readouterr().err
    assert err.startswith('Error: --timezone "EST" is a fixed offset (-05:00) that never changes for daylight saving')
    assert "Use America/New_York for the local time there, or -05:00" in err
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--timezone=-05:00", "--quiet") == 1
    assert "nowhere.csv: file not found" in capsys.readouterr().err


ON_BAD_DATE_FIX = ("Write on_bad_date: fail (stop at dates that cannot be read; the default) or on_bad_date: drop "
                   "(skip those messages), as with --on-bad-date.")
DATE_ORDER_FIX = ("Write date_order: day-first (01.11.2026 is 1 Nov), month-first (11/01/2026 is 1 Nov) or auto (the "
                  "default), as with --date-order.")


@pytest.mark.parametrize(("key", "value", "allowed", "hint", "fix"), [
    ("on_bad_date", "fial", "fail, drop", "Did you mean fail? ", ON_BAD_DATE_FIX),
    ("on_bad_date", "skip", "fail, drop", "", ON_BAD_DATE_FIX),
    ("date_order", "dayfirst", "auto, day-first, month-first", "Did you mean day-first? ", DATE_ORDER_FIX),
    ("date_order", "DMY", "auto, day-first, month-first", "", DATE_ORDER_FIX),
])
def test_a_choice_in_the_mapping_file_names_the_file_and_line(tmp_path, key, value, allowed, hint, fix):
    path = tmp_path / "m.yaml"
    path.write_text(f"text: text\n\n{key}: {value}\n")
    with pytest.raises(FeedbackLensError) as info:
        load_mapping_file(path)
    assert str(info.value) == f'm.yaml, line 3: {key} "{value}" is not one of {allowed}.\n  How to fix: {hint}{fix}'


def test_a_missing_column_named_in_the_mapping_file_is_fixed_there(tmp_path, capsys):
    csv, path = _small_csv(tmp_path), tmp_path / "m.yaml"
    path.write_text("text: text\n# the columns to filter by\nmetadata: [review_id, dat]\n")
    assert _analyse(tmp_path, str(csv), "--mapping", str(path), "--quiet") == 1
    assert capsys.readouterr().err == (
        'Error: few.csv: there is no column "dat" (asked for by metadata in m.yaml, line 3). The columns are: '
        "'review_id', 'text', 'date'.\n  How to fix: Did you mean \"date\"? Change metadata in m.yaml, line 3 to one "
        "of those names.\n")
    # The option wins over the file, and its error names the option.
    assert _analyse(tmp_path, str(csv), "--mapping", str(path), "--meta", "chanel", "--quiet") == 1
    assert '(asked for by --meta)' in capsys.readouterr().err
    path.write_text("text: txt\n")
    assert _analyse(tmp_path, str(csv), "--mapping", str(path), "--quiet") == 1
    assert "(asked for by text in m.yaml, line 1)" in capsys.readouterr().err


def test_one_column_for_two_roles_is_refused(tmp_path, capsys):
    csv = _small_csv(tmp_path)
    for option in ("--id", "--date"):
        role = option.removeprefix("--")
        assert _analyse(tmp_path, str(csv), option, "text", "--quiet") == 1
        assert capsys.readouterr().err == (
            f'Error: few.csv: the column "text" would be both the text (detected from its name) and the {role} '
            f"({option}).\n  How to fix: Choose a different column for the text, the date and the id: change "
            f"{option}, or name the text column with --text.\n")
    # Both named: refused before the file is read (it does not exist).
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--text", "body", "--id", "body", "--quiet") == 1
    assert capsys.readouterr().err == (
        'Error: The column "body" would be both the text (--text) and the id (--id).\n'
        "  How to fix: Choose a different column for the text, the date and the id: change --id.\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("text: body\ndate: body\n")
    assert _analyse(tmp_path, str(tmp_path / "nowhere.csv"), "--mapping", str(mapping), "--quiet") == 1
    assert "(text in m.yaml) and the date (date in m.yaml)" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_too_few_messages_names_the_file_and_progress_is_one_line_per_stage(tmp_path, capsys):
    # Not --quiet: standard error is not a terminal under pytest, as in a log file.
    assert _analyse(tmp_path, str(_small_csv(tmp_path)), "--no-expectations") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Reading file…" and err[2] == "Cleaning…", err
    assert re.fullmatch(r"Reading file \(few\.csv\): done in \d+\.\d s", err[1]), err
    assert re.fullmatch(r"Cleaning: done in \d+\.\d s", err[3]), err
    assert err[4:] == ["Error: few.csv: not enough messages to find topics: 10 after cleaning, at least 30 are needed.",
                       "  How to fix: Add more feedback to the file (a few hundred messages give useful topics)."]
    assert "\r" not in "".join(err)


def test_snapshot_mistakes_exit_1_like_analyse_and_unparseable_options_2(tmp_path, capsys):
    common = ["--store", str(tmp_path / "empty"), "--out", str(tmp_path / "snaps"), "--no-images"]
    assert main(["snapshot", "--period", "last-month", *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: There is no run store folder {tmp_path / 'empty'}.") and "How to fix:" in err
    (tmp_path / "empty").mkdir()
    assert main(["snapshot", "--period", "last-month", *common]) == 1
    assert capsys.readouterr().err.startswith("Error: No analysed run in ")
    assert main(["runs", "--store", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith(f"Error: There is no run store folder {tmp_path / 'nowhere'}.")
    for command in (["snapshot", "--period", "last-month"], ["analyse", "few.csv"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--no-such-option"])
        assert info.value.code == 2
        assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_plain_lines_when_not_a_terminal_and_bars_on_one():
    plain = io.StringIO()
    reporter = TerminalReporter(stream=plain)
    with reporter.stage("Reading file") as st:
        st.describe("good.csv")
    with reporter.stage("Embedding", 60) as st:
        st.advance(20)
    with pytest.raises(RuntimeError), reporter.stage("Finding topics"):
        raise RuntimeError("failed")  # the error says so; no "done" line
    lines = plain.getvalue().splitlines()
    assert len(lines) == 5 and "\r" not in plain.getvalue()
    assert lines[0] == "Reading file…" and lines[2] == "Embedding (60 msg)…" and lines[4] == "Finding topics…"
    assert re.fullmatch(r"Reading file \(good\.csv\): done in \d+\.\d s", lines[1])
    assert re.fullmatch(r"Embedding: done in \d+\.\d s, 60 msg", lines[3])
    bars = _Terminal()
    with TerminalReporter(stream=bars).stage("Reading file") as st:
        st.describe("good.csv")
    assert "\r" in bars.getvalue() and "Reading file" in bars.getvalue()
    quiet = io.StringIO()
    with TerminalReporter(enabled=False, stream=quiet).stage("Reading file"):
        pass
    assert quiet.getvalue() == ""


def test_snapshot_sentiment_filter_error_says_how_to_fix():
    from types import SimpleNamespace

    from pipelines.snapshot import parse_filters

    run = SimpleNamespace(topics=pd.DataFrame({"topic": [0], "label": ["coffee"]}), manifest={}, messages=pd.DataFrame())
    with pytest.raises(FeedbackLensError) as info:
        parse_filters(["sentiment=angry"], run)
    assert str(info.value) == ('--filter "sentiment=angry": sentiment is one of negative, neutral, positive.\n'
                               "  How to fix: Write e.g. --filter sentiment=negative (one of negative, neutral, positive).")


def test_snapshot_filters_forgive_case_and_quote_values_with_commas():
    from types import SimpleNamespace

    from pipelines.snapshot import parse_filters

    products = ["Mortgage", "Credit reporting, credit repair services", "Student loan"]
    run = SimpleNamespace(topics=pd.DataFrame({"topic": [0], "label": ["escrow"]}),
                          manifest={"columns": {"metadata": ["Product"]}},
                          messages=pd.DataFrame({"Product": products}))
    # As the README writes it: the column and the value in lower case.
    assert parse_filters(["product=mortgage", "PRODUCT=Student Loan"], run).metadata == (
        ("Product", ("Mortgage", "Student loan")),)
    with pytest.raises(FeedbackLensError) as info:
        parse_filters(["product=Credit card"], run)
    assert info.value.fix == ('Values of Product: "Credit reporting, credit repair services", "Mortgage", '
                              '"Student loan".')


def test_a_txt_file_is_refused_with_the_fix_and_no_traceback(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("The app is great\nBut it crashes on login\n")
    assert _analyse(tmp_path, str(path), "--quiet") == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: notes.txt: a .txt file is not read, because plain text has no columns"), err
    assert 'How to fix: Save the messages as CSV with a header row, e.g. one column named "text"' in err
    assert "Traceback" not in err
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


def test_date_order_comes_from_the_option_or_else_the_mapping_file(tmp_path, capsys):
    from pipelines.cli import _parser, _settings

    args = _parser().parse_args(["analyse", "f.csv", "--date-order", "day-first"])
    assert _settings(args, {"date_order": "month-first"}).date_order == "day-first"
    assert _settings(_parser().parse_args(["analyse", "f.csv"]), {"date_order": "month-first"}).date_order == "month-first"
    assert _settings(_parser().parse_args(["analyse", "f.csv"]), {}).date_order == "auto"
    with pytest.raises(SystemExit):
        _parser().parse_args(["analyse", "f.csv", "--date-order", "dmy"])
    assert "--date-order: invalid choice: 'dmy'" in capsys.readouterr().err


def test_sheet_comes_from_the_option_or_else_the_mapping_file(tmp_path):
    from pipelines.cli import _parser, _settings

    assert _settings(_parser().parse_args(["analyse", "f.xlsx", "--sheet", "April"]), {"sheet": "May"}).sheet == "April"
    assert _settings(_parser().parse_args(["analyse", "f.xlsx"]), {"sheet": "May"}).sheet == "May"
    assert _settings(_parser().parse_args(["analyse", "f.xlsx"]), {}).sheet is None
    path = tmp_path / "m.yaml"
    path.write_text("text: body\nsheet: 2026\n")
    assert load_mapping_file(path)["sheet"] == "2026"  # the tab "2026", not a number
    path.write_text("text: body\nsheet: [April, May]\n")
    with pytest.raises(FeedbackLensError) as info:
        load_mapping_file(path)
    assert str(info.value).startswith("m.yaml, line 2: sheet is not a sheet name.")


def test_a_sheet_the_workbook_lacks_is_refused_before_embedding(tmp_path, capsys):
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "March"
    book.active.append(["text"])
    book.active.append(["Courier was kind"])
    book.save(tmp_path / "w.xlsx")
    assert _analyse(tmp_path, str(tmp_path / "w.xlsx"), "--sheet", "Marhc", "--quiet") == 1
    err = capsys.readouterr().err
    assert 'w.xlsx: the workbook has no sheet named "Marhc"; its sheets are "March".' in err
    assert 'Did you mean "March"?' in err and "Traceback" not in err
    assert not (tmp_path / "store" / "runs").exists() or not list((tmp_path / "store" / "runs").iterdir())


@pytest.mark.slow
def test_the_sheet_named_with_the_option_is_the_one_analysed(tmp_path, capsys):
    """Real reviews on the workbook's second sheet, a longer sheet of other reviews first: --sheet picks the second
    through the whole analysis with the real model, and the run records it."""
    from pipelines.store import list_runs, load_run

    reviews = pd.read_csv(SAMPLE)
    path = tmp_path / "export.xlsx"
    with pd.ExcelWriter(path) as book:
        reviews.iloc[:80].to_excel(book, sheet_name="Q1", index=False)
        reviews.iloc[80:140].to_excel(book, sheet_name="Q2", index=False)
    assert _analyse(tmp_path, str(path), "--sheet", "q2", "--quiet", "--no-expectations") == 0
    run = load_run(tmp_path / "store")
    assert set(run.messages["message_id"]) == set(reviews["review_id"].iloc[80:140].astype(str))
    assert list_runs(tmp_path / "store")[0]["settings"]["sheet"] == "q2"


def test_runs_of_the_same_file_say_how_they_came_about():
    """Four runs of one file looked alike in `feedback-lens runs`; each now says how it was made."""
    from pipelines.cli import run_origin

    assert run_origin({"update": {"mode": "refit"}, "lineage": {"previous_run": None}}) == "first run"
    assert run_origin({"update": {"mode": "incremental", "based_on": "R1"}}) == "extends R1"
    assert run_origin({"update": {"mode": "incremental", "based_on": "R1", "added": True}}) == "file added to R1"
    assert run_origin({"update": {"mode": "refit", "added": True}, "lineage": {"previous_run": "R1"}}) == (
        "file added to R1")
    assert run_origin({"update": {"mode": "refit"}, "lineage": {"previous_run": "R1"}}) == "topics found afresh"
    assert run_origin({}) == "first run"  # runs made before any of this was recorded


def test_several_files_are_checked_before_any_is_analysed(tmp_path, capsys):
    first = _small_csv(tmp_path, 40)
    assert _analyse(tmp_path, str(first), str(tmp_path / "feb.csv"), "--quiet") == 1
    assert capsys.readouterr().err.startswith(f"Error: {tmp_path / 'feb.csv'}: file not found.")
    (tmp_path / "README.txt").write_text("exports of 2026")
    assert _analyse(tmp_path, str(first), str(tmp_path / "README.txt"), "--quiet") == 1
    assert capsys.readouterr().err.startswith("Error: README.txt: a .txt file is not read")
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_several_files_are_analysed_as_one_run_each_added_to_the_last(tmp_path, capsys):
    """Monthly exports in one command: the first is analysed, each next one added to that run (as --add does), so
    the last run holds them all; a bad later file names itself and says what the latest run already holds."""
    from pipelines.store import list_runs, load_run, runs_on_the_way

    reviews = pd.read_csv(SAMPLE)
    months = {}
    for name, rows in (("jan.csv", slice(0, 150)), ("feb.csv", slice(150, 190)), ("mar.csv", slice(190, 230))):
        months[name] = tmp_path / name
        reviews.iloc[rows].to_csv(months[name], index=False)
    assert _analyse(tmp_path, str(months["jan.csv"]), str(months["feb.csv"]), "--quiet", "--no-expectations",
                    "--timezone", "Europe/London", "--note", "Exports from the help desk") == 0
    out = capsys.readouterr().out
    assert "File 1 of 2: jan.csv (analysed)" in out and "File 2 of 2: feb.csv (added to the latest run)" in out
    runs = list_runs(tmp_path / "store")
    assert len(runs) == 2 and runs[0]["counts"]["messages"] == 190
    assert runs[0]["files"] == ["jan.csv", "feb.csv"] and runs[1]["files"] == ["jan.csv"]  # not only its last file
    assert set(load_run(tmp_path / "store").messages["message_id"]) == set(reviews["review_id"].iloc[:190].astype(str))
    # The run made on the way (jan.csv alone) is not listed unless asked for: the last run holds both files.
    assert runs_on_the_way(runs) == {runs[1]["id"]} and runs[0]["batch"]["file"] == runs[0]["batch"]["of"] == 2
    assert main(["runs", "--store", str(tmp_path / "store")]) == 0
    listed = capsys.readouterr().out
    assert runs[0]["id"] in listed and runs[1]["id"] not in listed
    assert "Not listed: 1 run made on the way while several files were analysed together" in listed
    assert main(["runs", "--store", str(tmp_path / "store"), "--all"]) == 0
    assert runs[1]["id"] in capsys.readouterr().out

    bad = reviews.iloc[190:230].copy()
    bad.loc[bad.index[3], "date"] = "2024-13-45"
    bad.to_csv(months["mar.csv"], index=False)
    more = reviews.iloc[230:260]
    more.to_csv(tmp_path / "apr.csv", index=False)
    assert _analyse(tmp_path, str(tmp_path / "apr.csv"), str(months["mar.csv"]), "--add", "--quiet",
                    "--no-expectations") == 1
    err = capsys.readouterr().err
    assert "mar.csv, column \"date\": 1 of 40 values are not dates" in err
    # Every file is read before the first is analysed: apr.csv was added and then mar.csv failed, leaving the
    # latest run with part of the data.
    assert "Nothing was analysed: both files are checked before the first one is." in err
    assert len(list_runs(tmp_path / "store")) == 2 and list_runs(tmp_path / "store")[0]["counts"]["messages"] == 190
    assert _analyse(tmp_path, str(tmp_path / "apr.csv"), "--add", "--quiet", "--no-expectations") == 0
    assert list_runs(tmp_path / "store")[0]["counts"]["messages"] == 220
    # apr.csv was added without --timezone or --note: it is read in the run's zone, and the run keeps its note
    # (read in UTC, the whole run would have been counted in UTC days from then on).
    added = list_runs(tmp_path / "store")[0]
    assert added["settings"]["assume_timezone"] == "Europe/London" and added["note"] == "Exports from the help desk"
    from pipelines.store import files_in_words
    assert files_in_words(list_runs(tmp_path / "store")[0]) == "jan.csv + 2 more files"


def test_a_scheduled_snapshot_of_a_run_whose_data_stopped_says_so():
    """Every Monday's cron job rewrote week 43 of a run whose newest message was weeks old, and its log said nothing."""
    from datetime import date

    from pipelines.cli import stale_words

    manifest = {"run": {"date_range": {"min": "2025-11-01T13:31:14+00:00", "max": "2026-10-31T22:57:10+00:00"}}}
    assert stale_words(manifest, "last-week", today=date(2026, 12, 7)) == (
        "; note: the run's newest message is of 31 Oct 2026, 37 days ago, so last-week is counted back from then: "
        "analyse newer feedback to report on recent weeks")
    assert stale_words(manifest, "last-month", today=date(2026, 11, 10)) == ""  # 10 days: data still coming
    assert stale_words(manifest, "2026-W43", today=date(2026, 12, 7)) == ""  # a period asked for by name
    assert stale_words({"run": {}}, "last-week") == ""  # a run without dates has no last week anyway


def test_runs_are_listed_as_a_table_with_a_header_and_the_mark_explained():
    from pipelines.cli import format_runs

    older = {"id": "20261206-230815-c6b0", "created_at": "2026-12-06T23:08:15.5+00:00",
             "input": {"name": "fine_food_reviews.csv"}, "counts": {"messages": 4973, "topics": 49}}
    newer = {"id": "20261207-021131-b339", "created_at": "2026-12-07T02:11:31+00:00", "input": {"name": "new.csv"},
             "counts": {"messages": 5003, "topics": 49}, "update": {"added": True, "based_on": older["id"]}}
    assert format_runs([newer, older], newer["id"]).splitlines() == [
        "   Run                   Made (UTC)         Files                  Messages  Topics  How it came about",
        "*  20261207-021131-b339  7 Dec 2026, 02:11  new.csv                   5,003      49  file added to "
        "20261206-230815-c6b0",
        "   20261206-230815-c6b0  6 Dec 2026, 23:08  fine_food_reviews.csv     4,973      49  first run",
        "* the latest run: what the dashboard shows and snapshots use unless given --run."]


def test_an_unknown_option_is_named_with_its_commands_usage(capsys):
    """`snapshot --format pdf` printed the top-level usage ("feedback-lens [-h] COMMAND ..."), not snapshot's."""
    with pytest.raises(SystemExit) as info:
        main(["snapshot", "--period", "2026-10", "--format", "pdf"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("usage: feedback-lens snapshot ")
    assert err.endswith("feedback-lens snapshot: error: unrecognized arguments: --format pdf "
                        "(see feedback-lens snapshot --help)\n")


def test_runs_read_by_a_pipe_that_closes_early_ends_without_a_traceback(tmp_path):
    """`feedback-lens runs | head -1`: head stops reading; the command ends quietly, as ls or grep would."""
    import os
    import subprocess
    import sys

    (tmp_path / "store").mkdir()
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", "runs", "--store", str(tmp_path / "store")],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, cwd=SAMPLE.parents[2])
    finally:
        os.close(write_end)
    assert done.returncode == 0 and done.stderr == ""
