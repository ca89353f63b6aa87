"""The ``feedback-lens`` command: analyse files, list runs, serve the dashboard.

The one place (with the dashboard) where user errors are caught: they are printed as
"Error: ..." with the fix, and the command exits non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import tomllib
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from pipelines.errors import FeedbackLensError
from pipelines.settings import DATE_ORDERS, ColumnMapping, Settings, yaml_loader

ROOT = Path(__file__).resolve().parents[1]
STREAMLIT_CONFIG = ROOT / "streamlit_config" / "config.toml"
APP = ROOT / "dashboard" / "app.py"
MAPPING_KEYS = {"text", "date", "id", "metadata", "tags", "note", "on_bad_date", "timezone", "date_order", "sheet"}
ON_BAD_DATE = ("fail", "drop")  # --on-bad-date and the mapping file's on_bad_date


def load_mapping_file(path: Path) -> dict:
    """Read a column-mapping YAML file (text, date, id, metadata, tags, note, on_bad_date, timezone, date_order,
    sheet).

    Raises:
        FeedbackLensError: as :func:`read_mapping_file`.
    """
    return read_mapping_file(path)[0]


def read_mapping_file(path: Path) -> tuple[dict, dict[str, str]]:
    """A column-mapping YAML file's keys and values, and where each value is ('map.yaml, line 3'), from one reading.

    Raises:
        FeedbackLensError: the file is missing, not valid YAML (the line is named), has unknown keys, or an
            on_bad_date, timezone or date_order that is not one (the line is named).
    """
    import yaml

    from pipelines.clean import check_timezone

    try:
        raw = path.read_text("utf-8")
    except OSError as err:
        raise FeedbackLensError(f"{path}: cannot read the mapping file ({err.strerror}).",
                                fix="Check the path given with --mapping.") from None
    except UnicodeDecodeError as err:
        raise FeedbackLensError(f"{path.name}: the mapping file is not UTF-8 text (byte {err.start}).",
                                fix="Save it as UTF-8 text (any text editor can), e.g. text: review_body") from None
    try:
        data = yaml.load(raw, Loader=yaml_loader()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise FeedbackLensError(f"{path.name}{where}: {problem}.",
                                fix='Write one "key: value" per line, e.g. text: review_body') from None
    if not isinstance(data, dict):
        raise FeedbackLensError(f"{path.name}: expected keys such as 'text: review_body', found a {type(data).__name__}.",
                                fix="Write one 'key: value' per line.")
    unknown = sorted(set(data) - MAPPING_KEYS)
    if unknown:
        raise FeedbackLensError(f"{path.name}: unknown key(s) {', '.join(unknown)}.",
                                fix=f"Use only: {', '.join(sorted(MAPPING_KEYS))}.")
    if "metadata" in data and not (isinstance(data["metadata"], list) and all(isinstance(m, str) for m in data["metadata"])):
        raise FeedbackLensError(f"{path.name}: 'metadata' must be a list of column names.",
                                fix="Write it as: metadata: [channel, product, rating]")
    if "tags" in data and not (isinstance(data["tags"], list) and all(isinstance(m, str) for m in data["tags"])):
        raise FeedbackLensError(f"{path.name}: 'tags' must be a list of column names (or [] for none).",
                                fix="Write it as: tags: [labels]  (the columns whose values are lists such as "
                                    "\"billing, urgent\"), or tags: [] to read no column as tags.")
    lines = {key: f"{path.name}, line {line}" for key, line in _value_lines(yaml.compose(raw, Loader=yaml_loader())).items()}

    def where(key: str) -> str:
        return f"{lines[key]}: {key}" if key in lines else f"{path.name}: {key}"

    # Checked here, where the line is known: cleaning would read any other on_bad_date as "drop" and lose rows
    # silently, and meet a wrong zone only at the first date without one, as a traceback.
    on_bad_date = data.get("on_bad_date")
    if on_bad_date is not None and on_bad_date not in ON_BAD_DATE:
        close = difflib.get_close_matches(str(on_bad_date).strip().lower(), ON_BAD_DATE, n=1, cutoff=0.5)
        hint = f"Did you mean {close[0]}? " if close else ""
        raise FeedbackLensError(f'{where("on_bad_date")} "{on_bad_date}" is not one of {", ".join(ON_BAD_DATE)}.',
                                fix=f"{hint}Write on_bad_date: fail (stop at dates that cannot be read; the default) "
                                "or on_bad_date: drop (skip those messages), as with --on-bad-date.")
    if data.get("timezone") is not None:
        check_timezone(data["timezone"], where("timezone"))
    sheet = data.get("sheet")
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        data["sheet"] = str(sheet)  # sheet: 2026 is the tab "2026"
    elif sheet is not None and not isinstance(sheet, str):
        raise FeedbackLensError(f"{where('sheet')} is not a sheet name.",
                                fix='Write the name as on its tab, in quotes if it is not plain text: sheet: "2026.1"')
    date_order = data.get("date_order")
    if date_order is not None and date_order not in DATE_ORDERS:
        close = difflib.get_close_matches(str(date_order).strip().lower().replace(" ", "-").replace("_", "-"),
                                          DATE_ORDERS, n=1, cutoff=0.5)
        hint = f"Did you mean {close[0]}? " if close else ""
        raise FeedbackLensError(f'{where("date_order")} "{date_order}" is not one of {", ".join(DATE_ORDERS)}.',
                                fix=f"{hint}Write date_order: day-first (01.11.2026 is 1 Nov), month-first "
                                "(11/01/2026 is 1 Nov) or auto (the default), as with --date-order.")
    return data, lines


def _value_lines(document) -> dict[str, int]:
    """The line (from 1) of each top-level key's value in a composed YAML document: errors point at the value."""
    if document is None or not hasattr(document, "value") or not isinstance(document.value, list):
        return {}
    lines = {}
    for key, value in document.value:  # a repeated key: the last one wins, as in yaml.safe_load
        if isinstance(getattr(key, "value", None), str):
            lines[key.value] = value.start_mark.line + 1
    return lines


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="feedback-lens", description="Customer-feedback analytics: topics, trends, sentiment and expectation gaps.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyse", aliases=["analyze"], help="analyse a feedback file and publish a run",
                       description="Read a feedback file (CSV, TSV, JSON, JSONL, Parquet, XLSX), find topics, "
                       "sentiment and expectation gaps, and publish a new run that the dashboard shows.")
    a.add_argument("file", type=Path, nargs="+",
                   help="the feedback file; several (monthly exports): the first is analysed and each next one "
                        "added to that run, as --add does, so that the last run holds them all")
    a.add_argument("--text", help="column with the message text (detected from common names if omitted)")
    a.add_argument("--date", help="column with the date/time (detected if omitted)")
    a.add_argument("--id", help="column with a unique message id (detected if omitted)")
    a.add_argument("--meta", action="append", metavar="COLUMN",
                   help="metadata column to keep (repeat; default: every other column)")
    a.add_argument("--tags", action="append", metavar="COLUMN",
                   help="metadata column whose values are tag lists such as \"billing, urgent\" (repeat; "
                        "default: found by their values; tags: [] in a mapping file reads none as tags)")
    a.add_argument("--mapping", type=Path,
                   help="YAML file with text/date/id/metadata/tags/note/on_bad_date/timezone/date_order/sheet")
    a.add_argument("--sheet", help="the sheet of an Excel workbook to read (default: the first sheet with rows); "
                   "other files have none and ignore it")
    a.add_argument("--store", type=Path, help="run store folder (default: ./store or $FEEDBACK_LENS_STORE)")
    a.add_argument("--on-bad-date", choices=ON_BAD_DATE, help="unparseable dates: stop (default) or skip those messages")
    a.add_argument("--timezone", help="your time zone, e.g. America/Los_Angeles (default UTC): dates written without "
                   "one are read in it, and the pages and snapshots count its days and show its times")
    a.add_argument("--date-order", choices=DATE_ORDERS,
                   help="dates written with numbers, like 03/11/2026: auto (default: what the dates prove, else "
                   "dots day first and slashes month first), day-first or month-first")
    a.add_argument("--max-chars", type=int, help="cut messages longer than this (default 10000)")
    a.add_argument("--min-topic-size", type=int, help="smallest topic (default: 0.5%% of messages, at least 10)")
    a.add_argument("--encoder", help="sentence-transformers model name or folder (default: packaged all-MiniLM-L6-v2)")
    a.add_argument("--encoder-backend", choices=["torch", "onnx-int8"],
                   help="torch (default) or onnx-int8 (ONNX Runtime, int8 weights; for CPUs without bf16)")
    a.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="torch arithmetic: auto (default: bf16 on CPUs that have it, fp16 on a GPU), or fixed")
    a.add_argument("--executor", choices=["local", "dask"],
                   help="where the heavy stages run: local (default) or dask (a cluster; see --dask-scheduler)")
    a.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: $FEEDBACK_LENS_DASK)")
    a.add_argument("--sentiment", help="sentiment scorer: hybrid (default), embedding-head or vader")
    a.add_argument("--taxonomy", type=Path, help="expectation areas file (default: data/expectation_areas.yaml)")
    a.add_argument("--no-expectations", action="store_true", help="skip expectation areas and statements (faster)")
    a.add_argument("--no-redact", action="store_true",
                   help="keep personal data (e-mails, phones, card numbers, ...) in the texts instead of redacting it")
    a.add_argument("--keep-repeated-lines", action="store_true",
                   help="keep lines that many messages repeat at their start or end (signatures such as \"Sent from "
                   "my iPhone\", template greetings), which are otherwise left out")
    a.add_argument("--refit", action="store_true",
                   help="find topics afresh even when the file only adds messages to the latest run")
    a.add_argument("--add", action="store_true",
                   help="add the file's messages to the latest run's (a weekly export that holds only its week); "
                   "without it a file is analysed on its own")
    a.add_argument("--note", help="a remark shown with the run, e.g. where the data came from")
    a.add_argument("--if-no-run", action="store_true", help="do nothing if the store already has a run")
    a.add_argument("--quiet", action="store_true", help="no progress bars")

    s = sub.add_parser("serve", help="serve the dashboard on localhost",
                       description="Start the dashboard (Streamlit) with the settings in streamlit_config/config.toml.")
    s.add_argument("--store", type=Path, help="run store folder (default: ./store or $FEEDBACK_LENS_STORE)")
    s.add_argument("--port", type=int, help="port (default 8501)")
    s.add_argument("--host", help="address to bind (default localhost); another needs sign-in (--auth)")
    s.add_argument("--auth", choices=["none", "password", "oidc"],
                   help="sign-in mode (default: $FEEDBACK_LENS_AUTH or none, which is allowed on localhost only)")

    r = sub.add_parser("runs", help="list the analysed runs", description="List the runs in the store, newest first.")
    r.add_argument("--store", type=Path, help="run store folder")
    r.add_argument("--all", action="store_true",
                   help="also list the runs made on the way when several files were analysed together")

    n = sub.add_parser("snapshot", help="write a snapshot of a period (HTML, XLSX, CSV, PNG, PPTX) for meetings",
                       description="Write a self-contained snapshot of one period into OUT/<period>/ and update "
                       "OUT/index.json; made again from the same run it replaces that folder, from a newer run it "
                       "goes beside it (OUT/<period>--run-<run id>/), so a report already sent stays. Safe to run unattended: no prompts, one log line, exit 0 (written) or 1 (not "
                       "written: a mistake in the options or data, and the message says how to fix it, or an "
                       "unexpected failure), as analyse does; 2 is left to mistyped options.")
    n.add_argument("--period", required=True,
                   help="last-week | last-month | last-quarter | YYYY-MM | YYYY-Www | YYYY-Qn | FROM..TO (days, e.g. 2026-03-01..2026-03-15); "
                   "relative to the run's last message")
    n.add_argument("--filter", action="append", default=[], metavar="COLUMN=VALUE",
                   help="keep messages with this value (repeat; same column = either value): topic, sentiment or a "
                   "metadata column (one of tags: any message with that tag; a numeric column of many values: "
                   "LOW..HIGH)")
    n.add_argument("--run", help="run id (default: the latest run)")
    n.add_argument("--out", type=Path, help="snapshots folder (default: STORE/snapshots, or $FEEDBACK_LENS_SNAPSHOTS)")
    n.add_argument("--store", type=Path, help="run store folder (default: ./store or $FEEDBACK_LENS_STORE)")
    n.add_argument("--no-images", action="store_true", help="skip the PNG chart images (no Chromium needed)")

    _users_parser(sub)
    return p


def _users_parser(sub) -> None:
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--store", type=Path, help="run store folder; the users file is STORE/users.json")
    where.add_argument("--users-file", type=Path, help="the users file (default: $FEEDBACK_LENS_USERS or "
                       "STORE/users.json)")
    u = sub.add_parser("users", help="manage who may sign in to the dashboard, and their roles",
                       description="Users and roles for the dashboard's sign-in (FEEDBACK_LENS_AUTH=password or "
                       "oidc). Roles: viewer (read, export), analyst (viewer + curation), admin (analyst + "
                       "users, settings, runs). Exit 0 when done, 2 for a mistake (the message says how to fix it).")
    us = u.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = us.add_parser("add", parents=[where], help="add a user (asks for the password)",
                        description="Add a user. The password is asked twice (not echoed), or read from standard "
                        "input with --password-stdin; --sso adds a single-sign-on user (oidc mode) by e-mail.")
    add.add_argument("name", help="user name, e.g. alice (or an e-mail address for single sign-on)")
    add.add_argument("--role", required=True, choices=["viewer", "analyst", "admin"])
    how = add.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input (scripts)")
    how.add_argument("--sso", action="store_true", help="no password: signs in through single sign-on only")
    rm = us.add_parser("remove", parents=[where], help="remove a user")
    rm.add_argument("name")
    sr = us.add_parser("set-role", parents=[where], help="change a user's role")
    sr.add_argument("name")
    sr.add_argument("role", choices=["viewer", "analyst", "admin"])
    sp = us.add_parser("set-password", parents=[where], help="set a new password (also lifts a sign-in pause)")
    sp.add_argument("name")
    sp.add_argument("--password-stdin", action="store_true", help="read the password from standard input (scripts)")
    us.add_parser("list", parents=[where], help="list the users and their roles")


def _settings(args: argparse.Namespace, mapping_file: dict) -> Settings:
    s = Settings()
    changes: dict = {}
    if args.store:
        changes["store_dir"] = args.store
    for opt, key in (("on_bad_date", "on_bad_date"), ("timezone", "assume_timezone"), ("date_order", "date_order"),
                     ("sheet", "sheet"),
                     ("max_chars", "max_message_chars"),
                     ("min_topic_size", "min_topic_size"), ("encoder", "encoder"), ("sentiment", "sentiment"),
                     ("encoder_backend", "encoder_backend"), ("precision", "embed_precision"),
                     ("executor", "executor"), ("dask_scheduler", "dask_scheduler")):
        value = getattr(args, opt, None)
        if value is None and opt in mapping_file:
            value = mapping_file[opt]
        if value is not None:
            changes[key] = value
    if changes.get("dask_scheduler") and "executor" not in changes:  # an address says which executor is meant
        changes["executor"] = "dask"
    if getattr(args, "taxonomy", None):
        changes["taxonomy"] = args.taxonomy
    if getattr(args, "no_expectations", False):
        changes["expectations"] = False
    if getattr(args, "no_redact", False):
        changes["redact_pii"] = False
    if getattr(args, "keep_repeated_lines", False):
        changes["remove_repeated_lines"] = False
    if getattr(args, "refit", False):
        changes["refit"] = "always"
    return replace(s, **changes)


def _chosen_by(args: argparse.Namespace, role: str) -> str:
    """Where the column for ``role`` was named: its option, or else the mapping file (the option wins)."""
    return f"--{role}" if getattr(args, role) or not args.mapping else f"{role} in {args.mapping.name}"


def cmd_analyse(args: argparse.Namespace) -> int:
    from pipelines.analyse import analyse_files
    from pipelines.clean import check_timezone
    from pipelines.ingest import ROLE_OPTIONS, check_distinct_columns
    from pipelines.progress import TerminalReporter
    from pipelines.store import latest_run_id, latest_time_zone

    mapping_file, where = read_mapping_file(args.mapping) if args.mapping else ({}, {})
    if args.timezone is not None:  # now, not after reading the file and at the first date without a zone
        check_timezone(args.timezone, "--timezone")
    settings = _settings(args, mapping_file)
    if args.add and args.timezone is None and mapping_file.get("timezone") is None:
        # Added messages are read in the run's zone, as the upload form does; read in UTC, the whole run
        # would be counted in UTC days from now on, and a London team's September would start on 31 August.
        settings = replace(settings, assume_timezone=latest_time_zone(settings.store_dir))
    meta = args.meta if args.meta else mapping_file.get("metadata")
    tags = args.tags if args.tags else mapping_file.get("tags")
    # Roles the mapping file named (its options win): a column missing from the data file is then fixed there.
    from_file = [role for role, option in ROLE_OPTIONS.items() if not getattr(args, option) and mapping_file.get(role)]
    mapping = ColumnMapping(text=args.text or mapping_file.get("text"), date=args.date or mapping_file.get("date"),
                            id=args.id or mapping_file.get("id"), metadata=tuple(meta) if meta else None,
                            tags=tuple(tags) if tags is not None else None,
                            named_in=tuple((role, where.get(role, args.mapping.name)) for role in from_file))
    # Columns named twice need no file to be refused; one named once and also detected is refused on reading.
    check_distinct_columns([(role, getattr(mapping, role), _chosen_by(args, role)) for role in ("text", "date", "id")])
    if args.if_no_run and latest_run_id(settings.store_dir):
        print(f"A run already exists in {settings.store_dir}; not analysing again (drop --if-no-run to re-analyse).")
        return 0
    files = list(dict.fromkeys(args.file))

    def starting(i: int, file: Path, added: bool) -> None:
        if len(files) > 1:
            print(f"File {i + 1} of {len(files)}: {file.name} ({'added to the latest run' if added else 'analysed'})")

    analyse_files(files, mapping, settings, TerminalReporter(enabled=not args.quiet),
                  note=args.note or mapping_file.get("note"), add=args.add, starting=starting,
                  finished=lambda summary: print(summary.format()))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from pipelines.metrics import count_of
    from pipelines.store import latest_run_id, list_runs, missing_store_error, runs_on_the_way

    store = args.store or Settings().store_dir
    runs = list_runs(store)
    if not runs:
        if not Path(store).is_dir():
            raise missing_store_error(store)
        print(f"No runs in {store} yet. Create one with: feedback-lens analyse FILE")
        return 0
    latest = latest_run_id(store)
    on_the_way = set() if args.all else runs_on_the_way(runs) - {latest}
    print(format_runs([m for m in runs if m["id"] not in on_the_way], latest, runs))
    if on_the_way:
        print(f"Not listed: {count_of(len(on_the_way), 'run')} made on the way while several files were analysed "
              "together (each holds fewer files than the run after it); --all lists them.")
    return 0


def format_runs(runs: list[dict], latest: str | None, every: list[dict] | None = None) -> str:
    """The runs as a table with a header, newest first, the latest marked and the mark explained (``every``: all the
    store's runs, when ``runs`` leaves some out)."""
    from pipelines.store import files_in_words

    rows = [("", "Run", "Made (UTC)", "Files", "Messages", "Topics", "How it came about")]
    for m in runs:
        made = datetime.fromisoformat(m["created_at"][:19]).strftime("%-d %b %Y, %H:%M") if m.get("created_at") else ""
        rows.append(("*" if m["id"] == latest else "", m["id"], made, files_in_words(m), f"{m['counts']['messages']:,}",
                     f"{m['counts']['topics']:,}", run_origin(m, every or runs)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {4, 5}  # numbers line up on their last digit
    lines = ["  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
             .rstrip() for r in rows]
    return "\n".join([*lines, "* the latest run: what the dashboard shows and snapshots use unless given --run."])


def run_origin(manifest: dict, runs: list[dict] = ()) -> str:
    """How a run came about, for telling runs of the same file apart: 'added to 20261206-…', 'extends …', 'topics
    found afresh', 'first run'; for a run of several files analysed together, as its first file's run came about
    ('2 files together, first run'), found among ``runs``."""
    batch = manifest.get("batch") or {}
    if batch.get("file", 1) > 1:
        first = next((m for m in runs if (m.get("batch") or {}).get("id") == batch.get("id")
                      and m["batch"].get("file") == 1), None)
        if first is not None:
            return f"{batch['file']} files together, {run_origin(first)}"
    update = manifest.get("update") or {}
    before = update.get("based_on") or (manifest.get("lineage") or {}).get("previous_run")
    if update.get("added") and before:
        return f"file added to {before}"
    if update.get("mode") == "incremental" and before:
        return f"extends {before}"
    return "topics found afresh" if before else "first run"


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Exit 0 when written, 1 when not: a user mistake (bad period, filter, run, folder) or anything unexpected.

    1 for mistakes, as ``analyse`` exits; 2 stays argparse's, for an option it cannot parse at all.
    """
    import time
    from dataclasses import replace

    from pipelines.metrics import count_of
    from pipelines.settings import SnapshotSettings
    from pipelines.snapshot import kept_words, make_snapshot

    settings = SnapshotSettings()
    if args.no_images:
        settings = replace(settings, images=False)
    store = args.store or Settings().store_dir
    try:
        result = make_snapshot(store, args.out, args.period, args.filter, args.run, settings)
    except FeedbackLensError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped. No snapshot was written; earlier snapshots are unchanged.", file=sys.stderr)
        return 130
    except Exception as err:  # unattended runs need one line and an exit code, not a traceback
        if os.environ.get("FEEDBACK_LENS_DEBUG"):
            raise
        print(f"Error: the snapshot failed unexpectedly ({type(err).__name__}: {err}). Earlier snapshots are "
              "unchanged. Set FEEDBACK_LENS_DEBUG=1 for the details.", file=sys.stderr)
        return 1
    m = result.manifest
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    kept = kept_words(result)  # a snapshot of another run is never replaced: say where it stays
    print(f"{stamp} snapshot {result.name} written to {result.path} ({m['period']['label']}, run {m['run']['id']}, "
          f"{count_of(m['counts']['messages_in_period'], 'message')}, {len(m['files'])} files, {result.seconds:.1f} s)"
          + (f"; {kept}" if kept else "") + stale_words(m, args.period))
    return 0


STALE_AFTER_DAYS = 14
"""A relative period of a run whose newest message is older than this is said to lag (a scheduled job whose data
feed stopped would otherwise rewrite the same old week, unnoticed)."""


def stale_words(manifest: dict, period: str, today: date | None = None) -> str:
    """'; note: the run's newest message is of 31 Oct 2026, 37 days ago …' for last-week / last-month of a run whose
    data stopped coming; empty otherwise."""
    from pipelines.charts import format_date
    from pipelines.snapshot import RELATIVE_PERIODS

    newest = ((manifest.get("run") or {}).get("date_range") or {}).get("max")
    if period.strip().lower() not in RELATIVE_PERIODS or not newest:
        return ""
    last = datetime.fromisoformat(newest[:19]).date()  # the run's clock day is near enough for a lag of weeks
    days = ((today or datetime.now(UTC).date()) - last).days
    if days <= STALE_AFTER_DAYS:
        return ""
    return (f"; note: the run's newest message is of {format_date(last)}, {days} days ago, so {period.strip()} is counted "
            "back from then: analyse newer feedback to report on recent weeks")


def _read_password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise FeedbackLensError("No password on standard input.", fix="Pipe it in: ... | feedback-lens users "
                                    "add NAME --role ROLE --password-stdin")
        return password
    if not sys.stdin.isatty():
        raise FeedbackLensError("No terminal to ask for the password.",
                                fix="Run it in a terminal, or pipe the password in with --password-stdin.")
    password = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Same password again: ") != password:
        raise FeedbackLensError("The two passwords differ; nothing was changed.", fix="Type the same password twice.")
    return password


def cmd_users(args: argparse.Namespace) -> int:
    """Exit 0 when done, 2 for a user mistake (bad name, role or password, unknown or existing user)."""
    from pipelines.auth import COMMAND_LINE, Users, check_name, role_with_article, users_path
    from pipelines.settings import AuthSettings

    settings = AuthSettings()
    if args.users_file:
        settings = replace(settings, users_file=args.users_file)
    users = Users(users_path(settings, args.store), settings)
    action = args.users_command
    by = f"{COMMAND_LINE} ({_login_name()})"  # the users' change log says who changed whom
    try:
        if action == "list":
            records = users.records()
            if not records:
                print(f"No users in {users.path} yet. Add one with: feedback-lens users add NAME --role admin")
                return 0
            width = max(len(n) for n in records)
            for r in records.values():
                print(f"{r.name:<{width}}  {r.role:<7}  {r.sign_in:<14}  added {r.created_at[:10]}")
            return 0
        check_name(args.name)
        if action == "add":
            password = None if args.sso else _read_password(args)
            r = users.add(args.name, args.role, password, by=by)
            print(f"Added {r.name} ({r.role}, {r.sign_in}) to {users.path}.")
        elif action == "remove":
            r = users.remove(args.name, by=by)
            print(f"Removed {r.name} ({r.role}) from {users.path}.")
        elif action == "set-role":
            before = users.existing(args.name).role
            r = users.set_role(args.name, args.role, by=by)
            print(f"{r.name} is {'already' if r.role == before else 'now'} {role_with_article(r.role)}"
                  f"{': nothing changed' if r.role == before else ''}.")
        elif action == "set-password":
            users.existing(args.name)  # before asking for a password
            r = users.set_password(args.name, _read_password(args), by=by)
            print(f"New password set for {r.name}.")
        # Allowed (this command is how admins are made), but the dashboard now has nobody to upload files.
        if action in {"remove", "set-role"} and (records := users.records()) and not any(
                u.role == "admin" for u in records.values()):
            print("Note: no admin is left, so nobody can analyse new files or manage runs in the dashboard. Make "
                  "one with: feedback-lens users set-role NAME admin", file=sys.stderr)
    except FeedbackLensError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    if settings.mode == "none":
        print("Note: sign-in is off (FEEDBACK_LENS_AUTH=none); these users apply once it is password or oidc.",
              file=sys.stderr)
    return 0


def _login_name() -> str:
    """Who runs this command on the server, as the system names them."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this user id (a container's): its number says who it was
        return f"user id {os.getuid()}"


def streamlit_flags(config_path: Path = STREAMLIT_CONFIG, environ: dict | None = None) -> list[str]:
    """Our config.toml as ``--section.option=value`` flags, skipping any set by a STREAMLIT_* variable.

    Streamlit only reads config files from fixed places (.streamlit/ in the working folder), so we
    pass ours as flags; environment variables still win, as Streamlit documents.
    """
    environ = os.environ if environ is None else environ
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    flags = []
    for section, options in config.items():
        for option, value in options.items():
            env = "STREAMLIT_" + re.sub(r"(?<=[a-z])(?=[A-Z])", "_", f"{section}_{option}").upper()
            if env in environ:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags.append(f"--{section}.{option}={text}")
    return flags


def check_serving(env: dict, host: str | None) -> None:
    """Refuse to start a dashboard that would be open to the network without sign-in, or that nobody can sign in to.

    Raises:
        FeedbackLensError: mode none on an address other than localhost; password mode with no users, or with a
            number of days to remember a sign-in that is not one.
    """
    from pipelines.auth import Users, check_mode, check_served, check_sign_in_days, users_path
    from pipelines.settings import AuthSettings

    with open(STREAMLIT_CONFIG, "rb") as f:
        configured = tomllib.load(f).get("server", {}).get("address")
    mode = check_mode(env.get("FEEDBACK_LENS_AUTH") or "none")
    check_served(mode, host or env.get("STREAMLIT_SERVER_ADDRESS") or configured)
    users_file = env.get("FEEDBACK_LENS_USERS")
    settings = AuthSettings(mode=mode, users_file=Path(users_file) if users_file else None)
    users = Users(users_path(settings, env.get("FEEDBACK_LENS_STORE")), settings)
    if mode == "password":
        check_sign_in_days(env.get("FEEDBACK_LENS_SIGN_IN_DAYS", "").strip() or "7")
    if mode == "password" and not any(r.password_hash for r in users.records().values()):
        raise FeedbackLensError(f"Sign-in is by password, but {users.path} has no user with a password yet.",
                                fix="Add one first: feedback-lens users add NAME --role admin")


def cmd_serve(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.store:
        env["FEEDBACK_LENS_STORE"] = str(args.store.resolve())
    else:
        env.setdefault("FEEDBACK_LENS_STORE", str(Settings().store_dir.resolve()))
    if args.auth:
        env["FEEDBACK_LENS_AUTH"] = args.auth
    check_serving(env, args.host)
    chosen = {"server.port": args.port, "server.address": args.host}
    flags = [f for f in streamlit_flags(environ=env) if not chosen.get(f[2:].split("=", 1)[0])]
    flags += [f"--{name}={value}" for name, value in chosen.items() if value]
    sys.stdout.flush()
    sys.stderr.flush()
    # Streamlit takes this process's place, so stopping it (Ctrl-C, `kill`, systemd, a container's
    # stop) stops the dashboard; a child process would be left serving after its parent was killed.
    os.execve(sys.executable, [sys.executable, "-m", "streamlit", "run", str(APP), *flags], env)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``feedback-lens`` console script."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, with its usage: the top one showed "feedback-lens COMMAND …"
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        command = commands.get(args.command, parser) if args.command else parser
        command.error(f"unrecognized arguments: {' '.join(unknown)} (see {command.prog} --help)")
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"analyse": cmd_analyse, "analyze": cmd_analyse, "serve": cmd_serve, "runs": cmd_runs,
                "snapshot": cmd_snapshot, "users": cmd_users}
    try:
        return handlers[args.command](args)
    except FeedbackLensError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped. The previous run is unchanged.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `feedback-lens runs | head`: the reader has all it wanted
        # Python would print a second broken-pipe error when it flushes stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
