"""Build the labelled PII evaluation set: ``dev.jsonl`` and ``test.jsonl`` beside this file.

Reproducible (fixed seed): ``.venv/bin/python bench/pii_eval/build.py`` rewrites both files;
``--check`` only verifies that the files on disk are what this script makes. See README.md.

Each line: ``{"id", "split", "source", "text", "spans": [{"start", "end", "kind"}],
"negatives": [{"start", "end", "type"}]}``. ``spans`` are the personal data that must be
redacted; ``negatives`` mark look-alikes planted on purpose (order numbers, prices, dates, product
codes, existing "XXXX" redactions, plain links) so that false positives can be traced to a type.

Messages come from three sources:

- ``template``: hand-written feedback messages with slots; each slot is filled by a generator of
  varied formats (``{phone}`` → "+44 7700 900123", "(415) 555-2671", "06 12 34 56 78", ...).
  Templates are split between dev and test, so the test phrasing was never seen while tuning.
- ``handwritten``: test-only messages written by hand with the personal data inline
  (``[[kind|value]]`` markup), in formats chosen freely rather than by the generators.
- ``real``: real messages from ``../shared/data`` (CFPB complaints with their own XXXX
  redactions, Amazon food reviews with prices, links and product codes), read by hand: they hold no
  personal data that the redactor targets, so every detection in them is a false positive.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import string
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
SEED = 20260509

# ---------------------------------------------------------------------------------------------
# Value generators: each returns a string; ``rng`` is the only source of randomness.

FIRST = ["Sarah", "Mohammed", "Priya", "Wei", "Olga", "José", "Aoife", "Kwame", "Emily", "David", "Fatima",
         "Lukas", "Chloé", "Hiroshi", "Grace", "Daniel", "Amara", "Tom", "Isabella", "Raj", "Megan", "Ahmed",
         "Sofia", "Liam", "Nadia", "Carlos", "Hannah", "Oluwaseun", "Marek", "Jennifer"]
LAST = ["Jones", "O'Connor", "Nguyen", "García", "Okafor", "Kowalski", "Smith-Baker", "Patel", "Müller",
        "Thompson", "Rossi", "Chen", "Williams", "Dubois", "Andersson", "MacLeod", "Haddad", "Johnson",
        "Fitzgerald", "Kim", "Brown", "Novak", "Santos", "Walker", "Ivanova"]
MAIL_DOMAINS = ["gmail.com", "yahoo.co.uk", "outlook.com", "hotmail.fr", "icloud.com", "proton.me", "web.de",
                "aol.com", "comcast.net", "btinternet.com", "acme-logistics.com", "mail.northwind.org",
                "uni-heidelberg.de", "example-corp.co.uk", "gmx.net", "live.com.au"]


def _ascii(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().replace("'", "").lower()


def gen_name(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if r < 0.8:
        return rng.choice(FIRST)
    return f"{rng.choice(['Mr', 'Mrs', 'Ms', 'Mr.', 'Mrs.', 'Dr'])} {rng.choice(LAST)}"


def gen_email(rng: random.Random) -> str:
    f, last = _ascii(rng.choice(FIRST)), _ascii(rng.choice(LAST))
    d = rng.choice(MAIL_DOMAINS)
    form = rng.randrange(7)
    local = [f"{f}.{last}", f"{f[0]}{last}{rng.randint(1, 99)}", f"{f}_{last}{rng.randint(60, 99)}",
             f"{f}+orders", f"{last}.{f}{rng.randint(1000, 9999)}", f"{f}{last}", f"{f[0]}.{last}"][form]
    email = f"{local}@{d}"
    if rng.random() < 0.1:
        email = email.upper()
    return email


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return str((10 - total % 10) % 10)


def luhn_ok(digits: str) -> bool:
    return _luhn_digit(digits[:-1]) == digits[-1]


def gen_card(rng: random.Random) -> str:
    kind = rng.choice(["visa", "visa", "mc", "mc2", "amex", "discover"])
    prefix, length = {"visa": ("4", 16), "mc": (str(rng.randint(51, 55)), 16), "mc2": (str(rng.randint(2221, 2720)), 16),
                      "amex": (rng.choice(["34", "37"]), 15), "discover": ("6011", 16)}[kind]
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    num = body + _luhn_digit(body)
    sep = rng.choice([" ", " ", "-", ""])
    if kind == "amex":
        return sep.join([num[:4], num[4:10], num[10:]])
    return sep.join(num[i:i + 4] for i in range(0, 16, 4))


IBAN_SPECS = {"GB": "4a14n", "DE": "18n", "FR": "23n", "NL": "4a10n", "ES": "20n", "IE": "4a14n", "BE": "12n",
              "IT": "1a10n12n"}


def _iban_check(country: str, bban: str) -> str:
    s = bban + country + "00"
    n = int("".join(str(int(c, 36)) for c in s))
    return f"{98 - n % 97:02d}"


def gen_iban(rng: random.Random) -> str:
    country = rng.choice(list(IBAN_SPECS))
    bban = ""
    for count, kind in re.findall(r"(\d+)([an])", IBAN_SPECS[country]):
        pool = string.ascii_uppercase if kind == "a" else string.digits
        bban += "".join(rng.choice(pool) for _ in range(int(count)))
    iban = country + _iban_check(country, bban) + bban
    if rng.random() < 0.65:
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban


def gen_ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    d = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    return rng.choice([f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]} {d[3:5]} {d[5:]}", d])


def gen_nino(rng: random.Random) -> str:
    first = rng.choice([c for c in "ABCEGHJKLMNOPRSTWXYZ" if c not in "DFIQUV"])
    second = rng.choice([c for c in "ABCEGHJKLMNPRSTWXYZ" if c not in "DFIOQUV"])
    if first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        first, second = "A", "B"
    digits = "".join(rng.choice(string.digits) for _ in range(6))
    suffix = rng.choice("ABCD")
    if rng.random() < 0.6:
        return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{first}{second}{digits}{suffix}"


def gen_id(rng: random.Random) -> str:
    return gen_ssn(rng) if rng.random() < 0.55 else gen_nino(rng)


US_STREETS = ["Oak", "Maple", "Elm", "Washington", "Lakeview", "Sunset", "Cedar Hill", "Martin Luther King Jr",
              "West 42nd", "N Main", "Pine Ridge", "Rosewood", "S 3rd", "Peachtree", "Mission"]
US_SUFFIX = ["Street", "St", "St.", "Avenue", "Ave", "Road", "Rd", "Drive", "Dr", "Lane", "Ln", "Boulevard",
             "Blvd", "Court", "Ct", "Way", "Place", "Terrace", "Parkway"]
US_CITIES = [("Springfield", "IL"), ("Austin", "TX"), ("Portland", "OR"), ("Columbus", "OH"), ("Tampa", "FL"),
             ("Brooklyn", "NY"), ("Fresno", "CA"), ("Denver", "CO"), ("Raleigh", "NC"), ("Madison", "WI")]
UK_STREETS = ["Mill", "Church", "Victoria", "Kings", "Station", "Albert", "Queen's", "Highfield", "Manor", "Orchard"]
UK_SUFFIX = ["Road", "Street", "Lane", "Close", "Crescent", "Gardens", "Avenue", "Drive", "Way", "Terrace"]
UK_TOWNS = [("London", "NW1 6XE"), ("Leeds", "LS6 2AB"), ("Manchester", "M14 5RL"), ("Bristol", "BS8 1TH"),
            ("Glasgow", "G12 8QQ"), ("Cardiff", "CF10 3AT"), ("Brighton", "BN2 1TW"), ("York", "YO10 5DD"),
            ("Norwich", "NR2 4TJ"), ("Belfast", "BT7 1NN")]


def gen_address(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        street = f"{rng.randint(1, 9899)} {rng.choice(US_STREETS)} {rng.choice(US_SUFFIX)}"
        unit = rng.choice(["", "", f", Apt {rng.randint(1, 40)}{rng.choice(['', 'B', 'C'])}", f" #{rng.randint(100, 999)}",
                           f", Unit {rng.randint(1, 12)}"])
        city, state = rng.choice(US_CITIES)
        tail = rng.choice(["", f", {city}, {state} {rng.randint(10000, 99999)}", f", {city} {state}",
                           f" {city}, {state} {rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}"])
        return street + unit + tail
    if r < 0.9:
        num = f"{rng.randint(1, 240)}{rng.choice(['', '', 'A', 'B'])}"
        town, pc = rng.choice(UK_TOWNS)
        flat = rng.choice(["", "", f"Flat {rng.randint(1, 30)}, "])
        tail = rng.choice([f", {town} {pc}", f", {town}", f" {town} {pc}", ""])
        return f"{flat}{num} {rng.choice(UK_STREETS)} {rng.choice(UK_SUFFIX)}{tail}"
    city, state = rng.choice(US_CITIES)
    return f"{rng.choice(['P.O. Box', 'PO Box'])} {rng.randint(10, 99999)}, {city}, {state} {rng.randint(10000, 99999)}"


def _token(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def gen_url(rng: random.Random) -> str:
    """URLs that carry a secret: reset tokens, session ids, e-mail addresses, signed links, credentials."""
    host = rng.choice(["account.shopwise.com", "www.brightbank.co.uk", "app.fastparcel.io", "my.telco-one.net",
                       "portal.greenenergy.com", "links.mailer-service.com", "secure.payflow.eu"])
    form = rng.randrange(7)
    if form == 0:
        return f"https://{host}/reset-password?token={_token(rng, 32)}"
    if form == 1:
        return f"https://{host}/orders/track?order={rng.randint(10**6, 10**7)}&email={_ascii(rng.choice(FIRST))}%40gmail.com"
    if form == 2:
        return f"https://{host}/verify?code={rng.randint(100000, 999999)}&session={_token(rng, 24, string.hexdigits.lower())}"
    if form == 3:
        return f"https://{host}/unsubscribe?uid={_token(rng, 16, string.hexdigits.lower())}&sig={_token(rng, 28)}"
    if form == 4:
        return f"https://drive.google.com/file/d/1{_token(rng, 32)}/view?usp=sharing"
    if form == 5:
        return f"http://{host}/login?user={_ascii(rng.choice(FIRST))}&password={_token(rng, 10)}"
    return f"https://{host}/invite/{_token(rng, 22)}"


GENERATORS = {"name": gen_name, "email": gen_email, "phone": None, "card": gen_card, "iban": gen_iban,
              "id": gen_id, "ssn": gen_ssn, "nino": gen_nino, "address": gen_address, "url": gen_url}

# Phones: valid numbers (a customer's real number is valid), in the formats people write them.
PHONE_REGIONS = [("US", 30), ("GB", 22), ("CA", 6), ("AU", 8), ("DE", 8), ("FR", 8), ("IE", 5), ("IN", 6),
                 ("NL", 4), ("ES", 3)]


def gen_phone(rng: random.Random) -> str:
    import phonenumbers as pn

    region = rng.choices([r for r, _ in PHONE_REGIONS], [w for _, w in PHONE_REGIONS])[0]
    kind = rng.choice([pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE])
    example = pn.example_number_for_type(region, kind) or pn.example_number(region)
    national = str(example.national_number)
    for _ in range(200):
        keep = rng.randint(2, 3)
        cand = national[:keep] + "".join(rng.choice(string.digits) for _ in range(len(national) - keep))
        num = pn.parse(f"+{example.country_code}{cand}")
        if pn.is_valid_number(num):
            break
    intl = pn.format_number(num, pn.PhoneNumberFormat.INTERNATIONAL)
    nat = pn.format_number(num, pn.PhoneNumberFormat.NATIONAL)
    forms = [intl, nat, nat, pn.format_number(num, pn.PhoneNumberFormat.E164)]
    digits = re.sub(r"\D", "", nat)
    if region in ("US", "CA"):
        d = digits[-10:]
        forms += [f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}", f"1-{d[:3]}-{d[3:6]}-{d[6:]}",
                  f"({d[:3]}){d[3:6]}-{d[6:]}", f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}"]
    if region == "GB":
        forms += [digits, intl.replace("+44 ", "+44 (0)"), f"0044 {intl[4:]}"]
    if region in ("FR", "DE", "NL", "ES", "IE"):
        forms += [intl.replace(" ", ""), digits]
    return rng.choice(forms)


GENERATORS["phone"] = gen_phone

# Look-alikes: never personal data, planted to catch false positives.


def neg_order(rng: random.Random) -> str:
    form = rng.randrange(6)
    if form == 0:  # Amazon style: 3-7-7 digits
        return f"{rng.randint(100, 999)}-{rng.randint(10**6, 10**7 - 1)}-{rng.randint(10**6, 10**7 - 1)}"
    if form == 1:
        return f"#{rng.randint(10**7, 10**9)}"
    if form == 2:
        return f"{rng.choice(['A', 'W', 'UK', 'ORD'])}{rng.randint(10**6, 10**10)}"
    if form == 3:  # long order / reference numbers of card lengths (Luhn passes by chance one time in ten)
        return "".join(rng.choice(string.digits) for _ in range(rng.choice([13, 15, 16, 18])))
    if form == 4:
        return f"{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
    return str(rng.randint(10**9, 10**11))


def neg_price(rng: random.Random) -> str:
    v = rng.choice([rng.randint(1, 60) + rng.choice([0.99, 0.5, 0.0, 0.49]), rng.randint(100, 5000) + 0.0])
    cur = rng.choice(["$", "£", "€", "{$", "USD "])
    s = f"{v:,.2f}"
    return f"{{${s}}}" if cur == "{$" else f"{cur}{s}"


def neg_date(rng: random.Random) -> str:
    y, m, d = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]
    return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{months[m - 1]} {d}, {y}", f"{d}.{m}.{y}",
                       "XX/XX/XXXX", f"XX/XX/{y}", f"{d} {months[m - 1][:3]} {y}"])


def neg_code(rng: random.Random) -> str:
    form = rng.randrange(7)
    if form == 0:
        return "B0" + _token(rng, 8, string.ascii_uppercase + string.digits)  # ASIN
    if form == 1:
        return f"SKU {rng.randint(10, 99)}-{rng.randint(1000, 9999)}-{rng.randint(10, 99)}"
    if form == 2:
        return f"model {rng.choice(['KX', 'TG', 'HD', 'XR'])}-{rng.randint(100, 9999)}{rng.choice(['', 'B', 'EU'])}"
    if form == 3:
        return f"lot {rng.randint(2019, 2025)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    if form == 4:  # UPS tracking
        return "1Z" + _token(rng, 6, string.ascii_uppercase + string.digits) + "".join(rng.choice(string.digits) for _ in range(10))
    if form == 5:  # USPS tracking, 22 digits in groups
        d = "9400" + "".join(rng.choice(string.digits) for _ in range(18))
        return " ".join(d[i:i + 4] for i in range(0, 22, 4))
    return f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}"  # app version


def neg_redacted(rng: random.Random) -> str:
    return rng.choice(["XXXX", "XXXX XXXX", "XXXX-XXXX-XXXX-" + str(rng.randint(1000, 9999)), "XX/XX/XXXX",
                       "XXXX XXXX XXXX", "XXXX" + str(rng.randint(1000, 9999)), "( XXXX ) XXXX-XXXX", "XXX-XX-XXXX"])


def neg_link(rng: random.Random) -> str:
    return rng.choice(["amazon.com", "www.walmart.com", "http://www.amazon.com/gp/product/B000EVG8J2",
                       "https://www.consumerfinance.gov/complaint/", "www.bbb.org", "https://www.ups.com/track",
                       "http://www.amazon.com/dp/B001EQ5AKQ/ref=cm_cr_rev_prod_title", "ebay.co.uk",
                       "https://www.fda.gov/food/recalls", "https://support.apple.com/en-us/HT201232",
                       "https://www.amazon.com/s?k=green+tea&ref=nb_sb_noss"])


def neg_quantity(rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(2, 48)} oz", f"{rng.randint(2, 12)}-pack", f"{rng.randint(100, 999)}g",
                       f"{rng.randint(1, 9)},{rng.randint(100, 999)},{rng.randint(100, 999)} points",
                       f"{rng.randint(1, 12)}:{rng.choice(['00', '15', '30', '45'])} pm",
                       f"{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}", f"{rng.randint(1, 5)} stars"])


NEGATIVES = {"order": neg_order, "price": neg_price, "date": neg_date, "code": neg_code,
             "redacted": neg_redacted, "link": neg_link, "qty": neg_quantity}

# ---------------------------------------------------------------------------------------------
# Templates. {kind} = personal data to redact; {~type} = look-alike. Kinds "ssn"/"nino" are labelled "id".

DEV_TEMPLATES = [
    "My order {~order} never arrived. Please contact me at {email} or on {phone}.",
    "Hi, I'm {name}. I was charged {~price} twice on my card {card} on {~date}. Please refund one of them.",
    "I called customer service on {~date} and spoke to {name}, who promised a callback on {phone}. Nobody called.",
    "Please send the replacement to {address}. The first one went to my old place.",
    "The refund of {~price} should go to my account {iban}, not back to the card.",
    "They asked for my social security number ({ssn}) just to change my delivery date. Why??",
    "On XX/XX/XXXX I paid {~price} to XXXX. They say they never got it. My email is {email}.",
    "Your reset link {url} does not work, it says expired every time.",
    "Love this coffee! Ordered the {~qty} bag from {~link} and it came in two days. {~code} is the one to buy.",
    "Delivery driver left the parcel at {address} which is not even my house. Tracking {~code}.",
    "I have been a customer for 10 years. My NI number is {nino} and they still could not find my file.",
    "Text me on {phone} when it ships. Order {~order}.",
    "Card ending XXXX was charged for order {~order} on {~date} ({~price}). I never placed it.",
    "Thanks for the quick help!\n\n{name}\n{phone}",
    "I disputed the charge on XX/XX/XXXX. The bank sent letters to {address} but I moved. Reach me at {email}.",
    "Wrong item again (got {~code} instead). Contact: {name}, {phone}, {email}",
    "The app keeps crashing on version {~code}. I use {email} to log in.",
    "Please update my payment details to {card}, expiry 09/27. The old card was cancelled.",
    "Great tea, {~qty}, and the price ({~price}) is fair. Will buy again from {~link}.",
    "My husband {name} ordered this for me. Arrived {~date}, perfect.",
    "I got an email asking me to confirm my details at {url}. Is this really from you?",
    "Direct debit from {iban} failed again even though there was money in the account.",
    "They reported the debt to the credit bureaus using the wrong SSN {ssn}. My number is different.",
    "XXXX XXXX from the collection agency called me at work, {phone}, several times a day.",
    "Ship to: {name}, {address}",
    "Order {~order} placed {~date}: {~qty} of {~code}, total {~price}. Still waiting.",
    "You can see the photo of the damaged box here: {url}",
    "I spoke with {name} on the chat. She was great and sorted my refund of {~price}.",
    "Account holder: {name}\nIBAN: {iban}\nReference: {~order}",
    "If you need to verify, my National Insurance number is {nino} and date of birth is on file.",
    "I emailed {email} three times and never got an answer about order {~order}.",
    "Call back number {phone}. Best time after {~qty}.",
    "The product page ({~link}) says gluten free but the box says may contain wheat.",
    "I am disputing the XXXX charge of {~price} made on XX/XX/2019 with my card {card}.",
    "Moved house last month, new address is {address}. Please update it before the next delivery.",
]

TEST_TEMPLATES = [
    "Hello, my name is {name} and I want to complain about order {~order}. You can reach me on {phone}.",
    "I was double-billed ({~price}) on {~date}. The card used was {card}. Please look into this.",
    "Kindly refund to IBAN {iban} (account in my name). Ticket {~order}.",
    "Why does your form require my SSN {ssn}?? I only wanted a quote.",
    "The courier dropped my parcel at {address} instead of my door. Photo: {url}",
    "Sent you an email from {email} on {~date}, still no reply. Order {~order}.",
    "The tracking number {~code} shows delivered but nothing came. I live at {address}.",
    "Your agent {name} told me to call {phone} but that number is disconnected.",
    "Best snack ever, bought the {~qty} from {~link}. The {~price} price is a steal.",
    "My NI no. is {nino}, please stop sending letters addressed to someone else.",
    "On XX/XX/XXXX, XXXX debited {~price} from my account without authorization. Contact me at {email} or {phone}.",
    "Can you change the card on file to {card}? Thanks, {name}",
    "The unsubscribe link {url} takes me to a login page.",
    "Mum ({name}) gets confused with the app. Please call her on {phone} rather than email.",
    "Payment reference {~order}, paid {~price} from {iban} on {~date}. It shows as unpaid.",
    "My statement has a charge of {~price} on {~date} that I did not make. Card: {card}",
    "Please remove my details: {name}, {email}, {address}.",
    "Loved it. Product {~code}, {~qty}. Five stars.",
    "Collector keeps calling my mother's number {phone} about a debt that is not hers. Account XXXX.",
    "I was told my social security number {ssn} was used to open an account I never opened.",
    "Sign-in link sent to my inbox: {url} - it says invalid.",
    "Delivery address should be {address}, not the warehouse.",
    "Re: order {~order}\nFrom: {name} <{email}>\nThe lid was cracked on arrival.",
    "Hi team, I'm {name}. The app (version {~code}) logs me out every time. My login is {email}.",
    "National insurance {nino} - the tax code on my payslip is wrong since {~date}.",
    "Bank transfer details I gave were {iban}; the money went somewhere else.",
    "I rang {phone} (your hotline) for an hour on {~date} and was cut off twice.",
    "Replacement sent to {address} on {~date} but it never arrived. Ref {~order}.",
    "Cheers {name}, the second box was perfect. Will order the {~qty} size next time.",
    "They sent my card {card} details in a plain email. That is not secure!",
    "XXXX XXXX told me on XX/XX/XXXX that the {~price} fee would be waived. It was not.",
    "Price went from {~price} to {~price} overnight. See {~link}.",
    "Whoever packed this ({~code}) did a great job. Regards, {name}",
    "Here is the shared folder with the receipts: {url} . Call {phone} if you cannot open it.",
    "Please post the form to {address}. I do not have a printer.",
]

HANDWRITTEN = [
    "hi my name is [[name|Jessica Alvarez]], ordered on 3/14 and still nothing!! call me [[phone|(773) 294-6610]] plz",
    "Contact email: [[email|r.mukherjee@fastmail.com]]. Order number 702-8813264-5530912 was short two bags.",
    "I paid with my Amex [[card|3782 822463 10005]] and got charged in euros, €48.20 instead of $52.",
    "Stop calling me at [[phone|+44 7911 123456]], I have already paid invoice INV-2023-00481.",
    "My IBAN is [[iban|DE89 3704 0044 0532 0130 00]], please send the €35 refund there.",
    "SSN: [[id|219-09-9999]] (they insisted I write it here). Case number 2023-0457812.",
    "The new flat is [[address|Flat 4, 27 Hartington Road, Bristol BS6 7TL]], since 01/06/2023.",
    "Reset your password link: [[url|https://accounts.mystore.com/pwreset?t=eyJhbGciOiJIUzI1NiJ9.c2lk.Zm9v]] didn't work",
    "Spoke to [[name|Marcus]] in billing, he was really helpful, the fee of $35.00 was refunded.",
    "Lovely shortbread. 12 x 150g for £18.99, bargain. Walkers really know what they're doing.",
    "The Keurig K-Classic K55 broke after 3 months. Model K55, serial 1234567890A. Not impressed.",
    "I was on hold 45 minutes with 1-800 support then they told me to email them instead. XXXX XXXX.",
    "send it to [[address|4821 N Clark St Apt 3, Chicago, IL 60640]] please and thank you",
    "my mobile is [[phone|0412 555 019]] (Aus) — please SMS, I can't take calls at work",
    "Paid by Visa [[card|4916-3389-4701-6670]], got two confirmation emails from [[email|orders@shopmart.com]].",
    "Our accounts payable is at [[email|ap@harlow-builders.co.uk]] — please send invoices there, not to me.",
    "NI number [[id|JG 10 37 48 C]]; I have been overpaying tax since April.",
    "Customer [[name|Ms. Adebayo]] called on 2 Feb about the faulty kettle, ref #55120.",
    "Got a text from [[phone|+1 415-867-5309]] claiming to be your fraud team. Was it you?",
    "Refund me at [[iban|NL91 ABNA 0417 1643 00]]. Order 88213.",
    "Link from your email: [[url|https://click.shopmail.com/track?uid=5f2a9c81d7e44b0c&email=pat%40gmail.com]]",
    "Best price for Earl Grey tea is at tesco.com, 80 bags for £2.50.",
    "I live at [[address|1600 Amphitheatre Parkway, Mountain View, CA 94043]] and the truck could not find it.",
    "I'm [[name|Chidi Okonkwo]], the account owner. Please don't talk to my ex about my account.",
    "Call me back on [[phone|020 7946 0018]] or my wife [[name|Helen]] on [[phone|07700 900461]].",
    "The SSN on my credit report ([[id|078-05-1121]]) is not mine, mine ends in XXXX.",
    "Dr Pepper tastes flat in the 24-pack I bought on 2022-11-03 from walmart.com.",
    "Write back to [[email|MIKE.OBRIEN1984@HOTMAIL.COM]] please. I don't check the other one.",
    "Card [[card|5425233430109903]] was declined but the money left my account anyway ($129.00).",
    "It came to [[address|12 Rue de la Paix, 75002 Paris]] and customs charged me €20.",
    "Paul Newman's salsa is the best on the market, and the 3-pack at $9.49 is fair.",
    "Please deliver to the back door at [[address|77 Massachusetts Ave, Cambridge, MA 02139]].",
    "Phone [[phone|+49 171 2345678]], email [[email|k.schmidt@t-online.de]], order A-55271.",
    "Your chat agent [[name|Svetlana]] gave me a code SAVE20 which did not work at checkout.",
    "Account 12345678, sort code 20-00-00, is mine; the IBAN [[iban|GB29 NWBK 6016 1331 9268 19]] too.",
    "My daughter [[name|Emma]] found a piece of plastic in the cereal (lot L2231 exp 11/2024).",
    "We were told to use the link [[url|https://pay.utilityco.com/bill?acct=449120377&token=a8F3kL9qZ2xW7vB1]] to pay.",
    "Ordered 2x Nespresso Vertuo pods (SKU 7235.40) at $38.50, arrived crushed.",
    "Please call [[phone|613-555-0142]] (Ottawa) between 9 and 5.",
    "My SIN is not needed for this — but they still asked. NI [[id|AB123456C]] for the UK account though.",
]

# ---------------------------------------------------------------------------------------------

_SLOT = re.compile(r"\{(~?)(\w+)\}")
_MARK = re.compile(r"\[\[(\w+)\|(.+?)\]\]")


def fill(template: str, rng: random.Random) -> tuple[str, list[dict], list[dict]]:
    out, spans, negs, pos = [], [], [], 0
    length = 0
    for m in _SLOT.finditer(template):
        literal = template[pos:m.start()]
        out.append(literal)
        length += len(literal)
        neg, kind = m.group(1) == "~", m.group(2)
        value = NEGATIVES[kind](rng) if neg else GENERATORS[kind](rng)
        (negs if neg else spans).append({"start": length, "end": length + len(value),
                                         **({"type": kind} if neg else {"kind": "id" if kind in ("ssn", "nino") else kind})})
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans, negs


def parse_marked(text: str) -> tuple[str, list[dict]]:
    out, spans, pos, length = [], [], 0, 0
    for m in _MARK.finditer(text):
        out.append(text[pos:m.start()])
        length += m.start() - pos
        spans.append({"start": length, "end": length + len(m.group(2)), "kind": m.group(1)})
        out.append(m.group(2))
        length += len(m.group(2))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), spans


def real_messages(rng: random.Random, n_each: int) -> list[dict]:
    """Real messages with no targeted personal data: CFPB complaints (pre-redacted) and food reviews."""
    sys.path.insert(0, str(HERE.parents[1]))
    from pipelines.clean import normalise_text

    rows = []
    picks = {"cfpb_complaints.csv": ("complaint_id", "text"), "amazon_fine_food_reviews.csv": (None, None)}
    for name, _ in picks.items():
        with open(SHARED / name, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            text_col = "text" if "text" in fields else next(c for c in fields if c.lower() in ("text", "review", "body"))
            id_col = fields[0]
            all_rows = [(r[id_col], normalise_text(r[text_col])) for r in reader]
        # Prefer messages that hold look-alikes (digits, XXXX, links, $), the hard negatives; cap the length.
        hard = [r for r in all_rows if re.search(r"\d{3}|XXXX|http|www\.|\$\d|#\d", r[1]) and len(r[1]) < 1500]
        for rid, text in rng.sample(hard, n_each):
            rows.append({"source": f"real:{name}:{rid}", "text": text, "spans": [], "negatives": []})
    return rows


# Real messages that, on reading, do hold personal data the redactor targets: labelled by hand here
# (source id -> [(value, kind)]). Filled in after reading the drawn messages; empty means none found.
REAL_LABELS: dict[str, list[tuple[str, str]]] = {
    # A sales director's signature quoted in a food review: a named person and his direct line.
    "real:amazon_fine_food_reviews.csv:b89aeb2a58ee": [("(800) 456 1330", "phone"), ("David Short", "name")],
    # A reviewer's signature (found when the NER variant's findings were read; the town and ZIP after it
    # are not a street address and are not labelled).
    "real:amazon_fine_food_reviews.csv:31e819d048ec": [("BILL B.", "name")],
}


def build() -> dict[str, list[dict]]:
    rng = random.Random(SEED)
    splits: dict[str, list[dict]] = {"dev": [], "test": []}
    for split, templates, copies in (("dev", DEV_TEMPLATES, 5), ("test", TEST_TEMPLATES, 6)):
        for t_i, template in enumerate(templates):
            for c in range(copies):
                text, spans, negs = fill(template, rng)
                splits[split].append({"source": f"template:{split}:{t_i}:{c}", "text": text, "spans": spans,
                                      "negatives": negs})
    for h_i, marked in enumerate(HANDWRITTEN):
        text, spans = parse_marked(marked)
        splits["test"].append({"source": f"handwritten:{h_i}", "text": text, "spans": spans, "negatives": []})
    real = real_messages(rng, 100)
    rng.shuffle(real)
    for i, row in enumerate(real):
        for value, kind in REAL_LABELS.get(row["source"], []):
            start = row["text"].index(value)
            row["spans"].append({"start": start, "end": start + len(value), "kind": kind})
        splits["dev" if i % 2 == 0 else "test"].append(row)
    for split, rows in splits.items():
        for i, row in enumerate(rows):
            row["id"] = f"{split}-{i:04d}"
            row["split"] = split
            for s in row["spans"]:
                assert s["kind"] in ("name", "email", "phone", "card", "iban", "id", "address", "url"), s
    return splits


def _dump(rows: list[dict]) -> str:
    keys = ("id", "split", "source", "text", "spans", "negatives")
    return "".join(json.dumps({k: r[k] for k in keys}, ensure_ascii=False) + "\n" for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the files instead of writing them")
    args = parser.parse_args()
    splits = build()
    for split, rows in splits.items():
        path = HERE / f"{split}.jsonl"
        text = _dump(rows)
        if args.check:
            if path.read_text("utf-8") != text:
                print(f"{path.name} differs from what build.py makes", file=sys.stderr)
                return 1
        else:
            path.write_text(text, "utf-8")
        kinds: dict[str, int] = {}
        for r in rows:
            for s in r["spans"]:
                kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
        print(f"{split}: {len(rows)} messages, {sum(kinds.values())} PII spans {dict(sorted(kinds.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
