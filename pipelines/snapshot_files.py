"""The files of a snapshot: HTML report, spreadsheet, CSV, chart images and slides, from one list of sections.

Owns formats only: every writer loops over :attr:`pipelines.snapshot.Snapshot.sections` in order, so the
report, the workbook and the deck cannot disagree; nothing here computes a figure. Text from customers is
escaped for each format: HTML-escaped in the report, and in spreadsheets and CSV any cell a spreadsheet
could read as a formula gets a leading apostrophe (:func:`escape_formula`). Output is deterministic: the
same snapshot gives byte-identical files (fixed document dates, normalised zip entries, fixed chart ids).

Chart images are drawn by Plotly's kaleido in the system Chromium (Debian's ``chromium``), found at
``$BROWSER_PATH`` or on the PATH and passed to kaleido explicitly, so kaleido never tries to download a
browser; MathJax is switched off so that no CDN is asked for anything.
"""

from __future__ import annotations

import html
import io
import os
import re
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from pipelines import charts
from pipelines.metrics import zone_words
from pipelines.snapshot import (
    CHANGE_PERCENT,
    CHANGE_SHARE,
    DATETIME,
    DAY,
    PERCENT,
    SHARE,
    Section,
    Snapshot,
    SnapshotError,
    quote_text,
)
from pipelines.store import files_in_words

REPORT, WORKBOOK, SLIDES = "report.html", "snapshot.xlsx", "slides.pptx"
CSV_DIR, CHART_DIR = "csv", "charts"
_FORMULA_START = ("=", "+", "-", "@")
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CORE_DATES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INK, MUTED, ACCENT = "#262730", "#6B7280", charts.ACCENT
TONES = {"good": "#1E7B45", "bad": "#B3261E"}


def write_all(snapshot: Snapshot, folder: Path) -> list[str]:
    """Write every file of the snapshot into ``folder``; returns their paths relative to it."""
    folder = Path(folder)
    files = [REPORT, WORKBOOK]
    (folder / REPORT).write_text(report_html(snapshot), encoding="utf-8")
    write_xlsx(snapshot, folder / WORKBOOK)
    files += write_csv(snapshot, folder)
    images: dict[str, Path] = {}
    if snapshot.settings.images:
        images = write_pngs(snapshot, folder / CHART_DIR)
        files += [f"{CHART_DIR}/{p.name}" for p in images.values()]
    write_pptx(snapshot, folder / SLIDES, images)
    files.append(SLIDES)
    return files


# ------------------------------------------------------------------------------------------- cell safety


def escape_formula(text: str) -> str:
    """Text that no spreadsheet runs as a formula: a leading apostrophe when it starts (after any leading
    whitespace) with ``= + - @``, or starts with a tab or carriage return. Other text is unchanged."""
    if text.startswith(("\t", "\r")) or text.lstrip().startswith(_FORMULA_START):
        return "'" + text
    return text


def cell_value(value: object) -> object:
    """A value as a spreadsheet cell: numbers stay numbers (NaN → empty), dates lose their zone (UTC), text is
    stripped of characters XML cannot hold and escaped with :func:`escape_formula`; lists are joined."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        return (value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value).to_pydatetime()
    if isinstance(value, (datetime, date)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        value = ", ".join(map(str, value))
    elif pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return escape_formula(_ILLEGAL_XML.sub("", str(value)))


# ---------------------------------------------------------------------------------------------- HTML

_CSS = """
:root { --ink: #262730; --muted: #6B7280; --line: #E6E8EB; --accent: #2E5EAA; --bg: #F7F8FA; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 "Source Sans Pro", "Segoe UI", Helvetica, Arial, sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 28px 0 18px; }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 28px; }
.kicker { margin: 0; color: var(--accent); font-weight: 600; letter-spacing: .04em; text-transform: uppercase;
          font-size: 12px; }
h1 { margin: 4px 0 6px; font-size: 30px; line-height: 1.2; }
.sub { margin: 0; color: var(--muted); }
nav { margin-top: 14px; display: flex; flex-wrap: wrap; gap: 6px 16px; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; margin: 22px 0; padding: 20px 24px; }
h2 { margin: 0 0 8px; font-size: 21px; }
h3 { margin: 18px 0 6px; font-size: 16px; }
p { margin: 4px 0 10px; }
.note { color: var(--muted); }
.empty { font-size: 17px; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 14px; margin: 12px 0 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 28px; font-weight: 600; line-height: 1.25; }
.card .change { font-size: 14px; }
.good { color: #1E7B45; font-weight: 600; } .bad { color: #B3261E; font-weight: 600; }
.chart { margin: 10px 0 4px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; font-size: 14px; }
th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 6px 8px; vertical-align: top; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.issue { margin: 16px 0 6px; }
.issue .reason { color: var(--muted); font-size: 14px; margin: 0 0 6px; }
blockquote { margin: 6px 0; padding: 8px 14px; border-left: 4px solid #E4A9A5; background: #FBF7F7;
             border-radius: 0 6px 6px 0; white-space: pre-wrap; }
blockquote .meta { display: block; color: var(--muted); font-size: 12.5px; margin-top: 4px; }
footer { color: var(--muted); font-size: 13px; padding: 4px 0 36px; }
@media (max-width: 800px) { .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media print { body { background: #fff; } section { break-inside: avoid; border: none; } nav { display: none; } }
"""
# No network at all: the page may run its own inline scripts and styles, nothing else is fetched.
_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:")
_PLOTLY_CONFIG = charts.PLOTLY_CONFIG | {"responsive": True}
_NUMERIC = re.compile(r"^[−+\-–]?[\d.,]+( ?%| pts| \(.*\))?$|^–$")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table_html(table: pd.DataFrame) -> str:
    numeric = [all(_NUMERIC.match(str(v)) for v in table[c]) for c in table.columns]
    head = "".join(f'<th class="num">{_esc(c)}</th>' if n else f"<th>{_esc(c)}</th>"
                   for c, n in zip(table.columns, numeric, strict=True))
    body = []
    for row in table.itertuples(index=False):
        cells = "".join(f'<td class="num">{_esc(v)}</td>' if n else f"<td>{_esc(v)}</td>"
                        for v, n in zip(row, numeric, strict=True))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _quote_html(quote) -> str:
    when = charts.format_date(quote.date) if quote.date is not None else "no date"
    extra = "".join(f" · {k}: {v}" for k, v in quote.metadata.items())
    meta = f"{when} · sentiment {charts.format_sentiment(quote.sentiment)}{extra} · message {quote.message_id}"
    return f'<blockquote>{_esc(quote.text)}<span class="meta">{_esc(meta)}</span></blockquote>'


def _section_html(section: Section) -> str:
    parts = [f'<section id="{section.key}"><h2>{_esc(section.title)}</h2>']
    if section.cards:
        cards = []
        for card in section.cards:
            cards.append(f'<div class="card"><div class="label">{_esc(card.label)}</div><div class="value">'
                         f'{_esc(card.value)}</div><div class="change"><span class="{card.tone}">{_esc(card.change)}'
                         f'</span> <span class="note">(before: {_esc(card.previous)})</span></div></div>')
        parts.append(f'<div class="cards">{"".join(cards)}</div>')
    if section.empty:  # the same line the slide shows; the text is then only notes
        parts.append(f'<p class="empty">{_esc(section.empty)}</p>')
    for i, line in enumerate(section.text):
        parts.append(f'<p class="{"" if i == 0 and not section.empty else "note"}">{_esc(line)}</p>')
    for stem, fig in section.figures:
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{stem}",
                          config=_PLOTLY_CONFIG, default_width="100%")
        parts.append(f'<div class="chart">{div}</div>')
    if section.display is not None and len(section.display) and section.group_by:
        for group, rows in section.display.groupby(section.group_by, sort=False):
            parts.append(f"<h3>{_esc(group)}</h3>")
            parts.append(_table_html(rows.drop(columns=section.group_by)))
    elif section.display is not None and len(section.display):
        parts.append(_table_html(section.display))
    for issue, reason, quotes in section.quotes:
        parts.append(f'<div class="issue"><h3>{_esc(issue)}</h3><p class="reason">{_esc(reason)}</p>')
        parts += [_quote_html(q) for q in quotes] or ['<p class="note">No message to quote.</p>']
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def report_html(snapshot: Snapshot) -> str:
    """The self-contained report: plotly.js embedded once, every section, no external request of any kind."""
    nav = " ".join(f'<a href="#{s.key}">{_esc(s.title)}</a>' for s in snapshot.sections)
    body = "\n".join(_section_html(s) for s in snapshot.sections)
    run = files_in_words(snapshot.run_manifest)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="generator" content="Feedback Lens">
<title>{_esc(snapshot.title)}</title>
<style>{_CSS}</style>
<script>{get_plotlyjs()}</script>
</head>
<body>
<header><div class="wrap">
<p class="kicker">Feedback Lens · snapshot</p>
<h1>{_esc(snapshot.period.label)}</h1>
<p class="sub">{_esc(snapshot.subtitle)}</p>
<nav>{nav}</nav>
</div></header>
<main class="wrap">
{body}
</main>
<footer><div class="wrap">Snapshot {_esc(snapshot.name)} of run {_esc(snapshot.run_id)}{' (' + _esc(run) + ')' if run else ''}.
The numbers are those of the dashboard with the same filters; days, weeks and months are counted in {_esc(zone_words(snapshot.time_zone))},
as there. This file needs no network and no dashboard.
</div></footer>
</body>
</html>
"""


# ------------------------------------------------------------------------------------- spreadsheet, CSV


def _fixed_time(snapshot: Snapshot) -> datetime:
    """The date written into document properties: the run's creation time, so re-made files are identical."""
    stamp = pd.Timestamp(snapshot.run_manifest.get("created_at") or snapshot.period.last)
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    return stamp.floor("s").to_pydatetime()


def normalise_zip(path: Path, when: datetime) -> None:
    """Rewrite an Office file so that the same content gives the same bytes (entry times, document dates)."""
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info.filename)) for info in z.infolist()]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = _CORE_DATES.sub(rb"\g<1>" + stamp + rb"\g<2>", data)
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            z.writestr(entry, data)
    path.write_bytes(buffer.getvalue())


def _sheet_sections(snapshot: Snapshot) -> list[Section]:
    return [s for s in snapshot.sections if s.sheet and s.table is not None]


def _column_format(formats: dict, column: str, row: int) -> str | None:
    fmt = formats.get(column)
    return fmt[row] if isinstance(fmt, list) else fmt


def _dates_without_times(values: pd.Series) -> bool:
    """Whether a column holds dates and every one of them is at midnight (UTC, as :func:`cell_value` writes it):
    such a column is written with a date-only format, as the CSV writes it."""
    stamps = [cell_value(v) for v in values]
    stamps = [v for v in stamps if v is not None]
    return bool(stamps) and all(isinstance(v, datetime) and v.time() == datetime.min.time() for v in stamps)


def write_xlsx(snapshot: Snapshot, path: Path) -> None:
    """One sheet per section table (summary, changes, topics, trends, sentiment, gaps, examples), with number
    and date formats, a frozen bold header and filters; every text cell, headers included, formula-safe."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    when = _fixed_time(snapshot)
    wb.properties.creator = "Feedback Lens"
    wb.properties.title = cell_value(snapshot.title)
    wb.properties.created = wb.properties.modified = when
    bold, header_fill = Font(bold=True), PatternFill("solid", fgColor="EEF1F5")
    rule = Border(bottom=Side(style="thin", color="9AA0A6"))
    for section in _sheet_sections(snapshot):
        ws = wb.create_sheet(section.sheet[:31])
        row = 1
        meta = list(section.meta)
        if section.key == "headline":
            ws.cell(row, 1, cell_value(snapshot.title)).font = Font(bold=True, size=14)
            row += 2
            run = files_in_words(snapshot.run_manifest)
            meta += [("Run", snapshot.run_id), ("Input files", run),
                     ("Filters", "; ".join(snapshot.filter_words) or "none (all messages)")]
            meta += [(k.replace("_", " ").capitalize(), v) for k, v in snapshot.counts.items()]
        for label, value in meta:
            ws.cell(row, 1, cell_value(label)).font = bold
            c = ws.cell(row, 2, cell_value(value))
            if isinstance(value, date):
                c.number_format = "yyyy-mm-dd"
            elif isinstance(value, (int, np.integer)):
                c.number_format = "#,##0"
            c.alignment = Alignment(horizontal="left")
            row += 1
        if meta:
            row += 1
        table = percent_columns(section)
        formats = {new: _IN_PERCENT[section.formats[old]] for old, new in zip(section.table.columns, table.columns,
                                                                              strict=True) if old != new}
        formats = {**(section.formats or {}), **formats}
        top = row
        day_only = {c for c in table.columns if _dates_without_times(table[c])}
        for j, column in enumerate(table.columns, start=1):
            c = ws.cell(row, j, cell_value(column))
            c.font, c.fill, c.border = bold, header_fill, rule
        for i, values in enumerate(table.itertuples(index=False)):
            row += 1
            for j, (column, value) in enumerate(zip(table.columns, values, strict=True), start=1):
                c = ws.cell(row, j, cell_value(value))
                fmt = _column_format(formats, column, i)
                if isinstance(c.value, datetime) and column in day_only and (not fmt or "h" in fmt):
                    c.number_format = DAY  # no "00:00" the data never had (a month stays a month)
                elif fmt and not isinstance(c.value, str):
                    c.number_format = fmt
                elif isinstance(c.value, datetime):
                    c.number_format = DATETIME
                if column in ("Quote", "Message"):
                    c.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = ws.cell(top + 1, 1)
        if len(table):
            ws.auto_filter.ref = f"A{top}:{get_column_letter(len(table.columns))}{row}"
        for j, column in enumerate(table.columns, start=1):
            longest = max([len(str(column))] + [len(str(v)) for v in table[column].head(200)])
            if j == 1 and meta:
                longest = max(longest, *(len(str(label)) for label, _ in meta))
            if j == 2 and meta:
                longest = max(longest, *(min(len(str(v)), 40) for _, v in meta))
            wide = {"Quote": 60, "Message": 80}
            ws.column_dimensions[get_column_letter(j)].width = wide.get(column, min(max(longest, 8) + 2, 50))
    wb.save(path)
    normalise_zip(path, when)


def _csv_value(value: object) -> object:
    if isinstance(value, pd.Timestamp) or isinstance(value, (datetime, date)):
        if pd.isna(value):
            return ""
        ts = pd.Timestamp(value)
        ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (float, np.floating)):
        return "" if not np.isfinite(value) else round(float(value), 6)
    v = cell_value(value)
    return "" if v is None else v


def csv_bytes(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with a byte-order mark, so spreadsheet programs read the accents right), formula-safe cells."""
    # Cell by cell (object columns): a whole number stays "12" beside "25.3" in the same column, not "12.0".
    safe = pd.DataFrame({str(cell_value(c)): pd.Series([_csv_value(v) for v in table[c]], dtype=object)
                         for c in table.columns}, columns=[str(cell_value(c)) for c in table.columns])
    return safe.to_csv(index=False, lineterminator="\n").encode("utf-8-sig")


# Fractions shown as percentages by their number format -> the format of the same figure times 100.
_IN_PERCENT = {SHARE: PERCENT, CHANGE_SHARE: CHANGE_PERCENT}


def percent_columns(section: Section) -> pd.DataFrame:
    """The section's table with its share columns (and a topic's ``Change %``) as percentages headed "(%)", as the
    Summary and Changes tables give shares (in points, so that a change is a difference of points): every sheet and
    every CSV then holds them in one unit (0.1286 beside 12.86 read as 100× apart, and a formula across sheets had
    to scale one)."""
    shares = [c for c, fmt in (section.formats or {}).items() if isinstance(fmt, str) and fmt in _IN_PERCENT and c in section.table]
    if not shares:
        return section.table
    out = section.table.copy()
    for c in shares:
        out[c] = [None if v is None or pd.isna(v) else float(v) * 100 for v in out[c]]
    return out.rename(columns={c: f"{c.removesuffix(' %')} (%)" for c in shares})


def write_csv(snapshot: Snapshot, folder: Path) -> list[str]:
    """One CSV per spreadsheet sheet in ``folder/csv/``; returns the relative paths."""
    (folder / CSV_DIR).mkdir(exist_ok=True)
    names = []
    for section in _sheet_sections(snapshot):
        name = f"{CSV_DIR}/{re.sub(r'[^a-z0-9]+', '_', section.sheet.lower()).strip('_')}.csv"
        (folder / name).write_bytes(csv_bytes(percent_columns(section)))
        names.append(name)
    return names


# ------------------------------------------------------------------------------------------ chart images


def chromium_path() -> str:
    """The system Chromium for kaleido: ``$BROWSER_PATH`` if set, else the first browser on the PATH.

    Raises:
        SnapshotError: none is installed (the message says how to install it or skip images).
    """
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).is_file():
        return env
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    where = f"BROWSER_PATH={env} is not a file, and n" if env else "N"
    raise SnapshotError(f"{where}o Chromium was found to draw the chart images.",
                        fix="Install it (`apt-get install chromium`, or `make browser`), set BROWSER_PATH to a "
                            "Chrome/Chromium program, or make the snapshot without images (--no-images).")


def chart_figures(snapshot: Snapshot) -> list[tuple[str, object]]:
    """Every chart of the snapshot, in report order, as ``(file stem, Figure)``."""
    return [fig for section in snapshot.sections for fig in section.figures]


def image_figures(snapshot: Snapshot) -> list[tuple[str, go.Figure]]:
    """The charts as drawn into images: with a margin, and with the filters named when there are any.

    The dashboard's figures sit close to the page edge; an image on its own needs a margin (a wider one that a
    chart asks for, e.g. the movers' column of changes, stays). An image also travels alone (onto a slide, into
    an e-mail), so a filtered chart says so: "Top topics" of the negative messages would read as of all of them.
    """
    framed = [(stem, go.Figure(fig).update_layout(margin_l=max(36, fig.layout.margin.l or 0),
                                                  margin_r=max(36, fig.layout.margin.r or 0),
                                                  margin_b=max(24, fig.layout.margin.b or 0),
                                                  title_pad_l=36))  # the title in line with the margin
              for stem, fig in chart_figures(snapshot)]
    if snapshot.filter_words:
        filtered = "Filtered to " + "; ".join(snapshot.filter_words)
        for _, fig in framed:
            subtitle = fig.layout.title.subtitle.text
            fig.update_layout(title_subtitle_text=f"{filtered} · {subtitle}" if subtitle else filtered,
                              title_subtitle_font={"size": 13, "color": "#6B7280"},
                              margin_t=max(86, fig.layout.margin.t or 0))
    return framed


def write_pngs(snapshot: Snapshot, folder: Path) -> dict[str, Path]:
    """Draw every chart as a PNG (``image_width`` × ``image_height`` at ``image_scale``) in one Chromium session.

    Returns:
        file stem → path of its image.
    """
    import kaleido

    s = snapshot.settings
    folder.mkdir(exist_ok=True)
    paths = {stem: folder / f"{stem}.png" for stem, _ in chart_figures(snapshot)}
    framed = image_figures(snapshot)
    specs = [{"fig": fig, "path": str(paths[stem]),
              "opts": {"format": "png", "width": s.image_width, "height": s.image_height, "scale": s.image_scale}}
             for stem, fig in framed]
    if not specs:
        return {}
    browser = chromium_path()
    try:
        kaleido.write_fig_from_object_sync(specs, kopts={"path": browser, "mathjax": False, "n": min(2, len(specs))},
                                           cancel_on_error=True)
    except Exception as err:  # kaleido raises many kinds (browser start, timeouts, render errors)
        raise SnapshotError(f"Could not draw the chart images with {browser}: {type(err).__name__}: {err}",
                            fix="Check that this Chromium starts (`chromium --headless --version`), or make the "
                                "snapshot without images (--no-images).") from None
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise SnapshotError(f"Chromium did not draw {', '.join(missing)}.", fix="Run the snapshot again.")
    return paths


# ---------------------------------------------------------------------------------------------- slides


def _rgb(colour: str):
    from pptx.dml.color import RGBColor

    return RGBColor.from_string(colour.lstrip("#"))


def _text_box(slide, left, top, width, height, text: str, size: int, colour: str = INK, bold: bool = False,
              align=None):
    from pptx.util import Pt

    box = slide.shapes.add_textbox(left, top, width, height)
    frame = box.text_frame
    frame.word_wrap = True
    for i, line in enumerate(text.split("\n")):
        p = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        p.text = _ILLEGAL_XML.sub("", line)
        if align is not None:
            p.alignment = align
        for run in p.runs:
            run.font.size, run.font.bold, run.font.color.rgb = Pt(size), bold, _rgb(colour)
    return box


def _slide_title(slide, text: str, subtitle: str | None = None) -> None:
    from pptx.util import Inches

    _text_box(slide, Inches(0.5), Inches(0.3), Inches(12.3), Inches(0.7), text, 28, bold=True)
    if subtitle:
        _text_box(slide, Inches(0.5), Inches(0.95), Inches(12.3), Inches(0.5), subtitle, 14, MUTED)


def _table_slides(prs, title: str, subtitle: str | None, table: pd.DataFrame, max_rows: int = 12,
                  max_slides: int = 3) -> None:
    """The table over as many slides as it needs (at most ``max_slides``; the rest is in the spreadsheet)."""
    pages = [table.iloc[i:i + max_rows] for i in range(0, len(table), max_rows)]
    for k, page in enumerate(pages[:max_slides]):
        note = subtitle or ""
        if k == max_slides - 1 and len(pages) > max_slides:
            note += f" · {charts.count_of(len(table) - (k + 1) * max_rows, 'more row')} in the spreadsheet"
        _table_slide(prs, title + (" (continued)" if k else ""), note, page)


BOLD_CHAR_WIDTH = 0.7
"""A bold character's width as a share of the font size, at most (DejaVu Sans Bold, what LibreOffice draws where
Calibri is missing; see :func:`card_value_size`)."""


def table_column_widths(shown: pd.DataFrame, total_inches: float, header_pt: int = 14) -> list[float]:
    """Column widths in inches for a slide table: each at least what its bold header needs on one line (a cell keeps
    0.1 inch inside each edge: "Messages" wrapped as "Messag/es" in a share of the longest values), the rest of
    ``total_inches`` shared by the longest value of each column (long text wraps, counted up to 70 characters)."""
    need = [len(str(c)) * BOLD_CHAR_WIDTH * header_pt / 72 + 0.25 for c in shown.columns]
    want = [max([len(str(c))] + [min(len(str(v)), 70) for v in shown[c]]) + 3 for c in shown.columns]
    held: set[int] = set()  # columns held at their header's width; the others share what is left
    while True:
        free = [j for j in range(len(want)) if j not in held]
        rest = total_inches - sum(need[j] for j in held)
        widths = [need[j] if j in held else rest * want[j] / sum(want[k] for k in free) for j in range(len(want))]
        short = {j for j in free if widths[j] < need[j]}
        if not short or len(short) == len(free):
            return widths
        held |= short


def _table_slide(prs, title: str, subtitle: str | None, shown: pd.DataFrame) -> None:
    from pptx.util import Inches, Pt

    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, title, subtitle)
    rows, cols = len(shown) + 1, len(shown.columns)
    total = Inches(12.3)
    shape = slide.shapes.add_table(rows, cols, Inches(0.5), Inches(1.55), total, Inches(0.4) * rows)
    grid = shape.table
    widths = table_column_widths(shown, total / Inches(1))
    for j, w in enumerate(widths):
        grid.columns[j].width = int(Inches(w))
    for j, column in enumerate(shown.columns):
        cell = grid.cell(0, j)
        cell.text = _ILLEGAL_XML.sub("", str(column))
        cell.fill.solid()
        cell.fill.fore_color.rgb = _rgb(ACCENT)
        for p in cell.text_frame.paragraphs:
            for run in p.runs:
                run.font.size, run.font.bold, run.font.color.rgb = Pt(14), True, _rgb("#FFFFFF")
    for i, values in enumerate(shown.itertuples(index=False), start=1):
        for j, value in enumerate(values):
            cell = grid.cell(i, j)
            cell.text = _ILLEGAL_XML.sub("", str(value))
            cell.fill.solid()
            cell.fill.fore_color.rgb = _rgb("#FFFFFF" if i % 2 else "#F3F5F8")
            for p in cell.text_frame.paragraphs:
                for run in p.runs:
                    run.font.size, run.font.color.rgb = Pt(13), _rgb(INK)


def text_lines(text: str, size: int, box_inches: float) -> int:
    """How many lines ``text`` takes in bold at ``size`` pt in a ``box_inches`` wide text box, wrapped at words
    (characters at most :data:`BOLD_CHAR_WIDTH` of the size wide, 0.1 inch kept inside each edge)."""
    room = int((box_inches - 0.2) * 72 / (BOLD_CHAR_WIDTH * size))
    lines, used = 1, 0
    for word in text.split():
        if used and used + 1 + len(word) > room:
            lines, used = lines + 1, len(word)
        else:
            used += len(word) + (1 if used else 0)
    return lines


CARD_VALUE_SIZES = (40, 34, 28, 24)
"""The point sizes a headline card's value may take on a slide, largest first."""


def card_value_size(value: str, box_inches: float) -> int:
    """The largest of :data:`CARD_VALUE_SIZES` at which ``value`` fits on one line of a ``box_inches`` wide card.

    A bold figure's characters are up to 0.7 of the font size wide (DejaVu Sans Bold's digits, what LibreOffice
    draws where Calibri is missing), and a text box keeps 0.1 inch inside each edge: "100.0%" or "12,345" at
    40 pt wrapped onto a second line in a quarter-width card.
    """
    room = (box_inches - 0.2) * 72
    for size in CARD_VALUE_SIZES:
        if len(value) * 0.7 * size <= room:
            return size
    return CARD_VALUE_SIZES[-1]


def _cards_slide(prs, section: Section) -> None:
    from pptx.enum.shapes import MSO_SHAPE
    from pptx.util import Inches

    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, section.title, section.text[0] if section.text else None)
    width, gap = Inches(2.85), Inches(0.3)
    for i, card in enumerate(section.cards):
        left = Inches(0.5) + i * (width + gap)
        frame = slide.shapes.add_shape(MSO_SHAPE.ROUNDED_RECTANGLE, left, Inches(2.0), width, Inches(2.6))
        frame.adjustments[0] = 0.06
        frame.fill.solid()
        frame.fill.fore_color.rgb = _rgb("#F3F5F8")
        frame.line.color.rgb = _rgb("#E6E8EB")
        frame.shadow.inherit = False
        _text_box(slide, left + Inches(0.25), Inches(2.2), width - Inches(0.5), Inches(0.5), card.label, 16, MUTED)
        _text_box(slide, left + Inches(0.25), Inches(2.7), width - Inches(0.5), Inches(0.9), card.value,
                  card_value_size(card.value, (width - Inches(0.5)) / Inches(1)), bold=True)
        _text_box(slide, left + Inches(0.25), Inches(3.65), width - Inches(0.5), Inches(0.4), card.change, 16,
                  TONES.get(card.tone, INK), bold=bool(card.tone))
        _text_box(slide, left + Inches(0.25), Inches(4.05), width - Inches(0.5), Inches(0.4),
                  f"before: {card.previous}", 14, MUTED)
    for j, line in enumerate(section.text[1:]):
        _text_box(slide, Inches(0.5), Inches(5.0) + j * Inches(0.5), Inches(12.3), Inches(0.5), line, 14, MUTED)


def _empty_slide(prs, section: Section) -> None:
    """A section with nothing to show: its title and the one line that says so (as in the report), its notes small."""
    from pptx.util import Inches

    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, section.title)
    _text_box(slide, Inches(0.5), Inches(2.6), Inches(12.3), Inches(1.0), section.empty or "", 24)
    if section.text:
        _text_box(slide, Inches(0.5), Inches(3.7), Inches(12.3), Inches(1.0), "\n".join(section.text), 14, MUTED)


QUOTE_TOP_IN, QUOTE_BOTTOM_IN, QUOTE_GAP_IN = 1.65, 7.2, 0.25  # where quotes may go on a 7.5-inch slide
# A quote box 12.1 inches wide holds about 100 characters a line at 15 pt, a line 0.32 inches high; its date line
# and margins take 0.45 inches more. Other sizes scale both.
_QUOTE_LINE_CHARS, _QUOTE_LINE_IN, _QUOTE_EXTRA_IN = 100 * 15, 0.32 / 15, 0.45


def _quote_height(text: str, size: int) -> float:
    """Inches a quote box of ``text`` needs at ``size`` points."""
    return _QUOTE_LINE_IN * size * (len(text) // (_QUOTE_LINE_CHARS / size) + 1) + _QUOTE_EXTRA_IN


def quote_layout(texts: Sequence[str]) -> tuple[int, list[str]]:
    """A font size, and the texts (shortened at a sentence end or word if need be), with which the quotes fit
    between the slide's title and its bottom edge: three of 400 characters at 15 pt ran off the slide."""
    room = QUOTE_BOTTOM_IN - QUOTE_TOP_IN - QUOTE_GAP_IN * max(len(texts) - 1, 0)
    for size in (15, 13, 12):
        if sum(_quote_height(t, size) for t in texts) <= room:
            return size, list(texts)
    size, share = 12, room / max(len(texts), 1)
    lines = (share - _QUOTE_EXTRA_IN) / (_QUOTE_LINE_IN * size)
    chars = int(lines * _QUOTE_LINE_CHARS / size) - 40  # the lines that fit, less room for " …"
    return size, [quote_text(t, chars) if len(t) > chars else t for t in texts]


def _quotes_slide(prs, issue: str, reason: str, quotes: Sequence) -> None:
    from pptx.util import Inches

    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _slide_title(slide, issue, reason)
    top = Inches(QUOTE_TOP_IN)
    size, texts = quote_layout([q.text for q in quotes])
    for q, text in zip(quotes, texts, strict=True):
        when = charts.format_date(q.date) if q.date is not None else "no date"
        when += "".join(f" · {k}: {v}" for k, v in q.metadata.items())
        height = Inches(_quote_height(text, size))
        bar = slide.shapes.add_shape(1, Inches(0.5), top, Inches(0.08), height)
        bar.fill.solid()
        bar.fill.fore_color.rgb = _rgb("#E4A9A5")
        bar.line.fill.background()
        _text_box(slide, Inches(0.7), top, Inches(12.1), height,
                  f"“{text}”\n{when} · sentiment {charts.format_sentiment(q.sentiment)}", size)
        top += height + Inches(QUOTE_GAP_IN)
    if not quotes:
        _text_box(slide, Inches(0.5), top, Inches(12.3), Inches(0.5), "No message to quote.", 15, MUTED)


def write_pptx(snapshot: Snapshot, path: Path, images: dict[str, Path]) -> None:
    """A 16:9 deck: a title slide, the headline figures, then one chart image or one table per slide; a section
    with nothing to show gets one slide with its title and the line that says so (:attr:`Section.empty`)."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    when = _fixed_time(snapshot)
    props = prs.core_properties
    props.title, props.author, props.last_modified_by = snapshot.title, "Feedback Lens", "Feedback Lens"
    props.created = props.modified = when
    props.revision = 1

    slide = prs.slides.add_slide(prs.slide_layouts[6])
    band = slide.shapes.add_shape(1, 0, 0, prs.slide_width, Inches(0.35))
    band.fill.solid()
    band.fill.fore_color.rgb = _rgb(ACCENT)
    band.line.fill.background()
    _text_box(slide, Inches(0.8), Inches(2.0), Inches(11.7), Inches(0.6), "FEEDBACK SNAPSHOT", 18, ACCENT, bold=True)
    # The subtitle goes below the title's real height: a week's label ('Week 9, 2026 (23 Feb – 1 Mar 2026)') takes
    # two lines at 44 pt and ran into it.
    title_height = text_lines(snapshot.period.label, 44, 11.7) * 44 * 1.2 / 72 + 0.2
    _text_box(slide, Inches(0.8), Inches(2.6), Inches(11.7), Inches(title_height), snapshot.period.label, 44, bold=True)
    _text_box(slide, Inches(0.8), Inches(2.6 + title_height + 0.3), Inches(11.7), Inches(1.6),
              snapshot.subtitle.replace(" · ", "\n", 2), 18, MUTED)

    for section in snapshot.sections:
        if section.cards:
            _cards_slide(prs, section)
            continue
        if section.empty:  # one slide that says so, as the report does, not an empty chart or table
            _empty_slide(prs, section)
            continue
        drawn = any(stem in images for stem, _ in section.figures)
        if section.figures and not drawn and not section.slide_table:  # made with --no-images: a table, or a word
            if section.display is not None and len(section.display):
                _table_slides(prs, section.title, section.text[0] if section.text else None, section.display)
            else:
                _empty_slide(prs, replace(section, empty="Its chart is in report.html; this deck was made without "
                                                         "chart images (--no-images)."))
        for stem, _ in section.figures:
            if stem in images:
                s = prs.slides.add_slide(prs.slide_layouts[6])
                width = Inches(12.7)
                height = int(width * snapshot.settings.image_height / snapshot.settings.image_width)
                s.shapes.add_picture(str(images[stem]), int((prs.slide_width - width) / 2),
                                     int((prs.slide_height - height) / 2), width, height)
        if section.slide_table and section.display is not None and len(section.display):
            _table_slides(prs, section.title, section.text[0] if section.text else None, section.display)
        for issue, reason, quotes in section.quotes:
            _quotes_slide(prs, issue, reason, quotes)
    prs.save(path)
    normalise_zip(path, when)
