"""CLI pieces that need no model: the mapping file and the dashboard's server flags."""

from __future__ import annotations

import pytest

from pipelines.cli import load_mapping_file, streamlit_flags
from pipelines.errors import FeedbackLensError


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
    assert str(info.value) == ("m.yaml: unknown key(s) txt.\n  How to fix: Use only: date, id, metadata, note, "
                               "on_bad_date, text, timezone.")


def test_streamlit_flags_keep_localhost_and_xsrf_and_yield_to_env():
    flags = streamlit_flags(environ={})
    assert "--server.address=localhost" in flags
    assert "--server.enableXsrfProtection=true" in flags
    assert "--server.port=8501" in flags
    overridden = streamlit_flags(environ={"STREAMLIT_SERVER_PORT": "9999"})
    assert not any(f.startswith("--server.port=") for f in overridden)
