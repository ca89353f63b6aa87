"""PII redaction: each kind with its validators, existing redactions left alone, offline, and a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.redact import KINDS, PatternRedactor, iban_valid, luhn_valid, redact_messages, redact_texts

ROOT = Path(__file__).resolve().parents[1]


def redact(text: str, **kw) -> str:
    return PatternRedactor(**kw).redact([text])[0][0]


# --- e-mail -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Write to jane.doe+orders@gmail.com please", "Write to [email] please"),
    ("Reply to <MIKE.OBRIEN1984@HOTMAIL.COM>.", "Reply to <[email]>."),
    ("ap@harlow-builders.co.uk — invoices", "[email] — invoices"),
])
def test_email_addresses_are_redacted(text, expected):
    assert redact(text) == expected


def test_email_lookalikes_are_kept():
    for text in ("The icon@2x.png file is blurry", "Follow @acme on social media", "rated 5@home"):
        assert redact(text) == text


# --- phone --------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["+44 7911 123456", "(773) 294-6610", "212-736-5000", "+1 415-867-5309",
                                    "020 7946 0018", "06 12 34 56 78", "+33 6 12 34 56 78", "0412 555 019",
                                    "+49 171 2345678", "0044 20 7946 0958", "07700900461",
                                    "+49 30 123456789"])  # a Berlin number: 9-digit subscriber part
def test_phone_numbers_international_and_national_are_redacted(number):
    assert redact(f"Call me on {number} after six.") == "Call me on [phone] after six."


@pytest.mark.parametrize("text, expected", [
    ("My number is 020 7946 0018.", "My number is [phone]."),
    ("Number: 0412 555 019", "Number: [phone]"),
    ("my phone no. is 212-736-5000", "my phone no. is [phone]"),
    ("paid with card # 4111 1111 1111 1111", "paid with card # [card]"),
    ("Card no. 5425233430109903", "Card no. [card]"),
])
def test_numbers_introduced_as_phones_or_cards_are_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "Order 1234567890 never came.", "Ticket # 212-736-5000 is still open.", "Account number 12345678901.", "Order #48213957 was late.", "Paid $1,299.00 on 03/04/2021.",
    "They took {$2500.00} on XX/XX/2019.", "Invoice INV-2023-00481, case number 2023-0457812.",
    "Tracking 9400 1118 9922 3817 5321 18 says delivered.", "Account 12345678, sort code 20-00-00.",
    "Best before 11 02 2024 14:48, lot 20210304.", "Version 2.13.0 crashes.", "Points balance 1,234,567.",
    "The book (ISBN-10: 0738551856) is lovely.",
])
def test_numbers_that_are_not_phones_are_kept(text):
    assert redact(text) == text


# --- payment card -------------------------------------------------------------------------------

def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "4916-3389-4701-6670", "5425233430109903",
                                  "3782 822463 10005"])
def test_luhn_valid_cards_are_redacted(card):
    assert redact(f"My card {card} was charged twice.") == "My card [card] was charged twice."


@pytest.mark.parametrize("text", [
    "My card 4111 1111 1111 1112 was charged twice.",  # fails the Luhn check
    "Order 112-3456789-1234567 arrived broken.",  # Amazon order number (holds a Luhn-valid run)
    "Order number 4000123412341236 is missing.",  # card-shaped, but said to be an order number
    "Card XXXX-XXXX-XXXX-1234 was charged.",  # already masked
    "Barcode 4006381333931 on the box.",
])
def test_card_lookalikes_are_kept(text):
    assert redact(text) == text


# --- IBAN ---------------------------------------------------------------------------------------

def test_iban_checksum():
    assert iban_valid("GB82WEST12345698765432") and iban_valid("DE89370400440532013000")
    assert not iban_valid("GB82WEST12345698765433") and not iban_valid("GB82WEST1234569876543")


@pytest.mark.parametrize("iban", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "NL91 ABNA 0417 1643 00"])
def test_valid_ibans_are_redacted(iban):
    assert redact(f"Refund to {iban} please.") == "Refund to [iban] please."


def test_iban_with_a_wrong_checksum_is_kept():
    assert redact("Refund to GB82 WEST 1234 5698 7654 33 please.") == "Refund to GB82 WEST 1234 5698 7654 33 please."


# --- national ids (US SSN, UK National Insurance number) ----------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("My SSN is 219-09-9999.", "My SSN is [id]."),
    ("social security number 219 09 9999", "social security number [id]"),
    ("SSN: 219099999", "SSN: [id]"),
    ("NI number AB 12 34 56 C please", "NI number [id] please"),
    ("my NINO is JG103748C", "my NINO is [id]"),
])
def test_national_ids_are_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "Reference 000-12-3456 and 666-12-3456",  # never-issued SSN areas
    "Customer 219099999 called",  # nine digits without "SSN" nearby
    "Existing redaction XXX-XX-XXXX stays",
    "ZIP 94107-2231",
])
def test_id_lookalikes_are_kept(text):
    assert redact(text) == text


# --- street address -----------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "4821 N Clark St Apt 3, Chicago, IL 60640", "Flat 4, 27 Hartington Road, Bristol BS6 7TL",
    "1600 Amphitheatre Parkway, Mountain View, CA 94043", "221B Baker Street", "P.O. Box 4521, Austin, TX 78701",
    "12 Rue de la Paix, 75002 Paris",
])
def test_street_addresses_are_redacted(address):
    assert redact(f"Send it to {address}.") == "Send it to [address]."


def test_quantities_and_ratings_are_not_addresses():
    for text in ("I gave it 5 stars and bought 3 More boxes.", "The 12-pack of 16 oz cans.", "Route 66 diner mug",
                 "Fruit Company, 264 US 109, 44 S. Ct. 1 (1924)"):
        assert redact(text) == text


# --- URL ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://account.shopwise.com/reset-password?token=9f8a7c6b5d4e3f2a1b0c9d8e7f6a5b4c",
    "https://click.shopmail.com/track?uid=5f2a9c81d7e44b0c&email=pat%40gmail.com",
    "http://user:hunter2@ftp.example.com/files",
    "https://drive.google.com/file/d/1AbCdEfGhIjKlMnOpQrStUvWxYz012345/view?usp=sharing",
])
def test_urls_with_secrets_are_redacted(url):
    assert redact(f"The link {url} does not work") == "The link [url] does not work"


@pytest.mark.parametrize("text", [
    "Cheaper on amazon.com and www.walmart.com",
    'See <a href="http://www.amazon.com/gp/product/B000EVG8J2">this</a>',
    "https://www.fda.gov/food/recalls lists it",
    "https://www.amazon.com/s?k=green+tea&ref=nb_sb_noss",
    "http://www.fda.gov/Safety/MedWatch/SafetyInformation/SafetyAlertsforHumanMedicalProducts/ucm197570.htm",
    "https://www.consumer.ftc.gov/articles/pdf-0111-fair-credit-reporting-act.pdf",
    "http://www.amazon.com/gp/customer-media/product-gallery/B004NWS0PI/ref=cm_ciu_pdp_images_1?ie=UTF8&index=1",
])
def test_plain_links_stay_readable(text):
    assert redact(text) == text


# --- names --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Hello, my name is Sarah O'Connor and I want a refund.", "Hello, my name is [name] and I want a refund."),
    ("I spoke to Marcus in billing.", "I spoke to [name] in billing."),
    ("Customer Ms. Adebayo called twice.", "Customer [name] called twice."),
    ("Great service.\nThanks,\nDavid Chen", "Great service.\nThanks,\n[name]"),
    ("Please call my wife Helen instead.", "Please call my wife [name] instead."),
])
def test_names_with_cues_are_redacted(text, expected):
    assert redact(text, names="cues") == expected


def test_brands_and_plain_words_are_not_names():
    for text in ("Dr Pepper tastes flat.", "Mr. Cooper raised my escrow.", "I'm Happy with it. I am not sure.",
                 "Trader Joe's sells it cheaper.", "My name is XXXX XXXX and I live in XXXX."):
        assert redact(text, names="cues") == text


def test_names_are_off_by_default_and_on_by_choice():
    assert redact("my name is Sarah Jones") == "my name is Sarah Jones"
    assert redact("my name is Sarah Jones", names="cues", kinds=("email",)) == "my name is Sarah Jones"
    assert redact("my name is Sarah Jones", names="cues") == "my name is [name]"


# --- existing redactions, idempotence, counts ---------------------------------------------------

CFPB = ("On XX/XX/XXXX I called XXXX XXXX about the {$250.00} fee on my account ending XXXX1234. "
        "My name is XXXX and the rep at ( XXXX ) XXXX-XXXX said card XXXX-XXXX-XXXX-5678 would be refunded "
        "by XX/XX/2019. I live at XXXX XXXX XXXX, XXXX, XXXX XXXX.")


def test_existing_redactions_are_left_alone_and_not_counted():
    for redactor in (PatternRedactor(), PatternRedactor(names="cues")):
        texts, counts = redact_texts([CFPB], redactor)
        assert texts == [CFPB]
        assert sum(counts.values()) == 0


def test_redacting_twice_changes_nothing():
    redactor = PatternRedactor(names="cues")
    once, _ = redact_texts(["Mail jo@gmail.com, call +44 7911 123456, card 4111 1111 1111 1111, I'm Jo Smith"], redactor)
    twice, counts = redact_texts(once, redactor)
    assert twice == once and sum(counts.values()) == 0
    assert once == ["Mail [email], call [phone], card [card], I'm [name]"]


def test_counts_per_kind():
    texts, counts = redact_texts(["a@b.com and c@d.org", "call 020 7946 0018", "nothing here"])
    assert set(counts) == set(KINDS)
    assert counts["email"] == 2 and counts["phone"] == 1 and counts["card"] == 0
    assert texts[2] == "nothing here"


def test_unknown_kind_or_name_mode_is_refused():
    with pytest.raises(ValueError, match="unknown kinds"):
        PatternRedactor(kinds=("email", "dna"))
    with pytest.raises(ValueError, match="names"):
        PatternRedactor(names="maybe")


def test_redact_messages_rehashes_text_and_redacts_text_metadata():
    from pipelines.clean import text_hash

    raw = ["Call me on +44 7911 123456", "Great tea"]
    messages = pd.DataFrame({"message_id": ["a", "b"], "text": raw, "text_hash": [text_hash(t) for t in raw],
                             "customer": pd.Series(["jo@gmail.com", None], dtype="string"), "rating": [1.0, 5.0]})
    out, counts = redact_messages(messages, ["customer", "rating"])
    assert out["text"].tolist() == ["Call me on [phone]", "Great tea"]
    assert out["text_hash"].tolist() == [text_hash("Call me on [phone]"), text_hash("Great tea")]
    assert out["customer"].tolist()[0] == "[email]" and pd.isna(out["customer"].tolist()[1])
    assert out["message_id"].tolist() == ["a", "b"] and out["rating"].tolist() == [1.0, 5.0]
    assert counts["phone"] == 1 and counts["email"] == 1
    assert messages["text"].tolist() == raw  # the input frame is not changed


def test_setting_on_by_default_and_cli_flag_turns_it_off():
    from pipelines.cli import _parser, _settings
    from pipelines.settings import Settings

    assert Settings().redact_pii is True
    args = _parser().parse_args(["analyse", "f.csv", "--no-redact"])
    assert _settings(args, {}).redact_pii is False
    assert _settings(_parser().parse_args(["analyse", "f.csv"]), {}).redact_pii is True


# --- offline ------------------------------------------------------------------------------------

def test_redaction_attempts_no_network_connection(tmp_path):
    """Redact every kind (the e-mail check reads tldextract's suffix list; names by spaCy NER too) with
    every network connection refused and recorded, and an empty cache folder."""
    script = (
        "import socket\n"
        "attempts = []\n"
        "def refuse(self, address, *a, **k):\n"
        "    attempts.append(address)\n"
        "    raise OSError('network disabled in test')\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        "socket.create_connection = lambda address, *a, **k: refuse(None, address)\n"
        "socket.getaddrinfo = lambda host, *a, **k: refuse(None, host)\n"
        "from pipelines.redact import PatternRedactor, has_public_suffix\n"
        "text = ('I am Jo Smith, jo.smith@gmail.com, +44 7911 123456, card 4111 1111 1111 1111, '\n"
        "        'IBAN GB82 WEST 1234 5698 7654 32, SSN 219-09-9999, 4821 N Clark St, Chicago, IL 60640, '\n"
        "        'https://x.example.com/reset?token=9f8a7c6b5d4e3f2a1b0c9d8e7f6a5b4c')\n"
        "for names in ('cues', 'ner'):\n"
        "    out, counts = PatternRedactor(names=names).redact([text])\n"
        "    assert all(counts[k] >= 1 for k in counts), (names, counts)\n"
        "assert has_public_suffix('mail.example.co.uk') and not has_public_suffix('icon.png')\n"
        "print('attempts', attempts)\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TLDEXTRACT_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "attempts []" in proc.stdout
    assert not (tmp_path / "cache").exists()  # no suffix list was downloaded into a cache either


# --- the real path ------------------------------------------------------------------------------

PLANTED = {
    "email": "margaret.whitfield1962@gmail.com",
    "phone": "+44 7911 123456",
    "card": "4916 3389 4701 6670",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "id": "219-09-9999",
    "address": "4821 N Clark St Apt 3, Chicago, IL 60640",
    "url": "https://account.shopwise.com/reset-password?token=9f8a7c6b5d4e3f2a1b0c9d8e7f6a5b4c",
}
# Pieces that must not survive either (a keyword or a label could hold one word of a finding).
PIECES = ["margaret.whitfield1962", "7911 123456", "7911123456", "4916 3389", "4701 6670", "WEST 1234", "219-09",
          "Clark St", "IL 60640", "9f8a7c6b5d4e3f2a1b0c9d8e7f6a5b4c", "shopwise"]


def _everything_in(folder: Path) -> str:
    """All text a run folder holds: every Parquet table's cells (lists included) and every JSON/text file."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            parts.append(" ".join(frame.columns.astype(str)))
            parts.append(frame.astype(str).to_csv(index=False))
        elif path.suffix in (".json", ".txt", ".csv", ".yaml"):
            parts.append(path.read_text("utf-8", errors="replace"))
    return "\n".join(parts)


@pytest.mark.slow
def test_planted_pii_never_reaches_the_run(tmp_path, small_sample_csv, encoder):
    """A real file with personal data planted in 40 messages (and in a metadata column) analysed end to end."""
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping, Settings
    from pipelines.store import load_run

    frame = pd.read_csv(small_sample_csv)
    lines = [
        f"Please email me at {PLANTED['email']} about this coffee.",
        f"Call me on {PLANTED['phone']}, the coffee arrived stale. Card {PLANTED['card']} was charged twice.",
        f"Refund the coffee to {PLANTED['iban']}. They asked for my SSN {PLANTED['id']}!",
        f"Ship the replacement coffee to {PLANTED['address']}. Reset link {PLANTED['url']} is broken.",
    ]
    for i in range(40):  # the same few lines in many messages: enough to become a topic's keywords
        frame.loc[i * 9, "text"] = lines[i % 4] + " " + str(frame.loc[i * 9, "text"])
    frame["contact"] = ""
    frame.loc[::7, "contact"] = PLANTED["email"]
    path = tmp_path / "planted.csv"
    frame.to_csv(path, index=False)
    store = tmp_path / "store"

    summary = analyse_file(path, ColumnMapping(metadata=("rating", "contact")), Settings(store_dir=store),
                           encoder=encoder)

    run = load_run(store)
    everything = _everything_in(summary.run_path)
    assert "[email]" in everything and "[phone]" in everything  # the scan does read the stored texts
    for kind, value in PLANTED.items():
        assert value not in everything, kind
    for piece in PIECES:
        assert piece.lower() not in everything.lower(), piece
    counts = run.manifest["counts"]["redacted"]
    assert counts["email"] == 10 + len(frame.loc[::7])  # 10 in texts, one per message in the metadata column
    assert all(counts[k] >= 10 for k in PLANTED), counts
    assert "redact" in run.manifest["timings"]
    assert run.manifest["settings"]["redact_pii"] is True
    texts = run.messages["text"]
    assert texts.str.contains(r"\[email\]", regex=True).sum() == 10
    assert (run.messages["contact"] == "[email]").sum() == len(frame.loc[::7])
    # the embedding cache is keyed by hashes of the redacted texts only
    from pipelines.clean import text_hash

    assert set(run.messages["text_hash"]) == {text_hash(t) for t in texts}
    # and it holds vectors and hashes, never text
    cache_text = _everything_in(store / "cache") if (store / "cache").exists() else ""
    assert PLANTED["email"] not in cache_text
    assert json.loads((summary.run_path / "run.json").read_text("utf-8"))["counts"]["redacted"] == counts
