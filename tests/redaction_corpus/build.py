#!/usr/bin/env python3
"""Build the labeled redaction test corpus (corpus.jsonl) for the exbrief redaction engine.

Usage:  python3 tests/redaction_corpus/build.py

Output: tests/redaction_corpus/corpus.jsonl, one JSON object per line:

    {"id": "email-001", "lang": "en", "text": "...",
     "known": ["Anna Müller", ...],
     "spans": [{"start": 12, "end": 31, "entity": "EMAIL"}, ...]}

* start/end are Python string indices (Unicode code points), end exclusive.
* "known" holds values the service already knows from structured Odoo fields of the same bundle
  (customer / contact / employee names).  It is non-empty only for items that test known-name
  propagation (entities PERSON_KNOWN / ORG_KNOWN).
* Items whose "spans" is [] are negatives: nothing in them may be redacted.

Templates are written in a tiny markup: ⟦ENTITY|value⟧ marks a sensitive substring.  The
renderer strips the markup and records exact offsets, so offsets can never drift.

Labeling conventions (see also the self-check at the end of this file):
* PHONE      leading "+" / first digit / "(" through the last digit, inner separators included.
* MONEY      currency symbol or ISO code together with the amount ("EUR 12.400,50", "1 200 €",
             "12.5k USD", "5 k€"); for label-only prices ("unit price 14.20", "Preis: 14,20")
             only the number.
* IBAN / CREDIT_CARD / VAT_ID   the whole identifier including inner spaces.
* EMPLOYEE_ID  the identifier only ("EMP-10234", "4471" in "employee ID 4471", "B-2231").
* POSTAL_ADDRESS  street + house number, plus postcode and city when they follow directly
             (US: "1200 W Fulton Street, Chicago, IL 60607").
* PERSON / PERSON_KNOWN  name tokens only, never titles or salutations.  A reversed known name
             ("Müller, Anna") is one span.  E-mail addresses are always EMAIL, even when their
             local part is a (known) name.
* ORG_KNOWN  an occurrence of a known company name, with or without the legal suffix.
* Unknown company names, carriers, BICs, cities on their own, Odoo references, SKUs, lots,
  tracking / container numbers, dates, times, quantities and percentages are NOT sensitive.

All e-mail domains are example domains, phone numbers use fictitious / drama ranges where the
numbering plan has them (US 555-01xx, UK Ofcom drama ranges, French ARCEP fiction ranges) and
obviously patterned digits elsewhere; all people and companies are invented.  IBANs pass mod-97
(and national check digits where they exist), card numbers pass Luhn, VAT ids carry valid national
check digits.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "corpus.jsonl"
rng = random.Random(20261120)

ENTITIES = [
    "EMAIL", "PHONE", "IBAN", "CREDIT_CARD", "VAT_ID", "IP_ADDRESS", "MONEY", "EMPLOYEE_ID",
    "POSTAL_ADDRESS", "PERSON_KNOWN", "PERSON", "ORG_KNOWN",
]

MINIMUM = {
    "EMAIL": 40, "PHONE": 70, "IBAN": 30, "CREDIT_CARD": 25, "VAT_ID": 30, "IP_ADDRESS": 25,
    "MONEY": 50, "EMPLOYEE_ID": 20, "POSTAL_ADDRESS": 25, "PERSON_KNOWN": 40, "ORG_KNOWN": 10,
    "PERSON": 40,
}
MIN_NEGATIVES = 100
MIN_ITEMS = 450

# --------------------------------------------------------------------------------------------
# markup
# --------------------------------------------------------------------------------------------
OPEN, SEP, CLOSE = "⟦", "|", "⟧"
MARK = re.compile(r"⟦([A-Z_]+)\|(.*?)⟧", re.S)


def S(entity: str, value: str) -> str:
    assert entity in ENTITIES, entity
    assert OPEN not in value and CLOSE not in value, value
    return f"{OPEN}{entity}{SEP}{value}{CLOSE}"


def EM(v): return S("EMAIL", v)
def PH(v): return S("PHONE", v)
def IB(v): return S("IBAN", v)
def CC(v): return S("CREDIT_CARD", v)
def VAT(v): return S("VAT_ID", v)
def IP(v): return S("IP_ADDRESS", v)
def MO(v): return S("MONEY", v)
def EID(v): return S("EMPLOYEE_ID", v)
def AD(v): return S("POSTAL_ADDRESS", v)
def PK(v): return S("PERSON_KNOWN", v)
def PE(v): return S("PERSON", v)
def OK(v): return S("ORG_KNOWN", v)


def render(markup: str):
    out, spans, last = [], [], 0
    length = 0
    for m in MARK.finditer(markup):
        chunk = markup[last:m.start()]
        out.append(chunk)
        length += len(chunk)
        value = m.group(2)
        spans.append({"start": length, "end": length + len(value), "entity": m.group(1),
                      "_value": value})
        out.append(value)
        length += len(value)
        last = m.end()
    out.append(markup[last:])
    text = "".join(out)
    assert OPEN not in text and CLOSE not in text, f"unbalanced markup: {markup!r}"
    return text, spans


ITEMS: list[dict] = []
_counters: Counter = Counter()


def add(cat: str, lang: str, markup: str, known=(), exempt=()):
    text, spans = render(markup)
    _counters[cat] += 1
    ITEMS.append({
        "id": f"{cat}-{_counters[cat]:03d}", "lang": lang, "text": text,
        "known": list(known), "spans": spans, "_exempt": set(exempt), "_cat": cat,
    })


# --------------------------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------------------------
def digits(s: str) -> list[int]:
    return [int(ch) for ch in s if ch.isdigit()]


def luhn_ok(number: str) -> bool:
    ds = digits(number)
    total = 0
    for i, d in enumerate(reversed(ds)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(partial: str) -> str:
    for d in "0123456789":
        if luhn_ok(partial + d):
            return partial + d
    raise AssertionError


def rand_digits(n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def iban_numeric(s: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in s))


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", s):
        return False
    return iban_numeric(s[4:] + s[:4]) % 97 == 1


def make_iban(cc: str, bban: str) -> str:
    check = 98 - iban_numeric(bban + cc + "00") % 97
    iban = f"{cc}{check:02d}{bban}"
    assert iban_ok(iban)
    return iban


def group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def bban_de():
    blz = rng.choice(["37040044", "50010517", "70150000", "20050550", "76050101", "60050101"])
    return blz + rand_digits(10)


def bban_fr():
    bank = rng.choice(["30006", "20041", "10107", "30004", "11315"])
    branch = rand_digits(5)
    account = rand_digits(11)
    key = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97)
    return f"{bank}{branch}{account}{key:02d}"


def bban_nl():
    bank = rng.choice(["ABNA", "INGB", "RABO", "TRIO", "SNSB"])
    while True:  # classic Dutch 11-test on the 10-digit account number
        acc = "0" + rand_digits(9)
        if sum(int(d) * (10 - i) for i, d in enumerate(acc)) % 11 == 0:
            return bank + acc


def bban_be():
    first10 = rng.choice(["001", "068", "310", "734", "539"]) + rand_digits(7)
    chk = int(first10) % 97 or 97
    return f"{first10}{chk:02d}"


def bban_gb():
    return rng.choice(["NWBK", "BARC", "MIDL", "LOYD"]) + rand_digits(6) + rand_digits(8)


def _es_dc(ten: str) -> int:
    w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    v = 11 - sum(int(d) * w[i] for i, d in enumerate(ten)) % 11
    return {11: 0, 10: 1}.get(v, v)


def bban_es():
    bank = rng.choice(["2100", "0049", "0182", "2085"])
    branch = rand_digits(4)
    account = rand_digits(10)
    dc = f"{_es_dc('00' + bank + branch)}{_es_dc(account)}"
    return bank + branch + dc + account


_IT_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25,
           24, 23]


def _it_cin(s: str) -> str:
    total = 0
    for i, ch in enumerate(s):
        idx = int(ch) if ch.isdigit() else ord(ch) - 65
        total += _IT_ODD[idx] if i % 2 == 0 else idx
    return chr(65 + total % 26)


def bban_it():
    abi = rng.choice(["03069", "02008", "05034", "01030"])
    cab = rand_digits(5)
    account = "0000" + rand_digits(8)
    return _it_cin(abi + cab + account) + abi + cab + account


BBAN = {"DE": bban_de, "FR": bban_fr, "NL": bban_nl, "BE": bban_be, "GB": bban_gb,
        "ES": bban_es, "IT": bban_it}


# ---- VAT ids --------------------------------------------------------------------------------
def vat_de():
    while True:
        body = str(rng.randint(1, 9)) + rand_digits(7)
        product = 10
        for d in body:
            s = (int(d) + product) % 10 or 10
            product = (2 * s) % 11
        check = 11 - product
        if check == 10:
            check = 0
        return "DE" + body + str(check)


def vat_de_ok(v):
    body, check = v[2:10], int(v[10])
    product = 10
    for d in body:
        s = (int(d) + product) % 10 or 10
        product = (2 * s) % 11
    c = 11 - product
    return (0 if c == 10 else c) == check


def _at_check(seven: str) -> int:
    s = 0
    for i, d in enumerate(seven):
        d = int(d)
        if i % 2 == 1:
            d *= 2
            d = d // 10 + d % 10
        s += d
    return (10 - (s + 4) % 10) % 10


def vat_at():
    seven = rand_digits(7)
    return "ATU" + seven + str(_at_check(seven))


def _nl_check(eight):
    return sum(int(d) * (9 - i) for i, d in enumerate(eight)) % 11


def vat_nl():
    while True:
        eight = str(rng.randint(1, 9)) + rand_digits(7)
        c = _nl_check(eight)
        if c < 10:
            return f"NL{eight}{c}B{rng.choice(['01', '02', '03'])}"


def vat_be():
    eight = "0" + str(rng.randint(2, 9)) + rand_digits(6)
    return f"BE{eight}{97 - int(eight) % 97:02d}"


def vat_fr():
    siren = luhn_complete(str(rng.randint(3, 8)) + rand_digits(7))
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def vat_it():
    body = rand_digits(7) + rng.choice(["001", "015", "036", "058", "096"])
    return "IT" + luhn_complete(body)


def _es_cif_control(seven):
    total = 0
    for i, d in enumerate(seven):
        d = int(d)
        if i % 2 == 0:
            d *= 2
            d = d // 10 + d % 10
        total += d
    return (10 - total % 10) % 10


def vat_es():
    seven = rand_digits(7)
    return f"ESB{seven}{_es_cif_control(seven)}"


def vat_gb():
    while True:
        seven = str(rng.randint(1, 9)) + rand_digits(6)
        s = sum(int(d) * w for d, w in zip(seven, [8, 7, 6, 5, 4, 3, 2]))
        check = (97 - s % 97) % 97
        return f"GB{seven}{check:02d}"


VAT_GEN = {"DE": vat_de, "AT": vat_at, "NL": vat_nl, "BE": vat_be, "FR": vat_fr, "IT": vat_it,
           "ES": vat_es, "GB": vat_gb}

VAT_FORMAT = {
    "DE": r"DE ?\d{9}", "AT": r"AT ?U\d{8}", "NL": r"NL ?\d{9}B\d{2}", "BE": r"BE ?[01]\d{9}",
    "FR": r"FR ?[0-9A-HJ-NP-Z]{2}\d{9}", "IT": r"IT ?\d{11}", "ES": r"ES ?[0-9A-Z]\d{7}[0-9A-Z]",
    "GB": r"GB ?\d{9}",
}


def vat_ok(v: str) -> bool:
    cc = v[:2]
    if cc not in VAT_FORMAT or not re.fullmatch(VAT_FORMAT[cc], v):
        return False
    s = v.replace(" ", "")
    if cc == "DE":
        return vat_de_ok(s)
    if cc == "AT":
        return _at_check(s[3:10]) == int(s[10])
    if cc == "NL":
        return _nl_check(s[2:10]) == int(s[10])
    if cc == "BE":
        return 97 - int(s[2:10]) % 97 == int(s[10:12])
    if cc == "FR":
        return luhn_ok(s[4:]) and (12 + 3 * (int(s[4:]) % 97)) % 97 == int(s[2:4])
    if cc == "IT":
        return luhn_ok(s[2:])
    if cc == "ES":
        return _es_cif_control(s[3:10]) == int(s[10])
    if cc == "GB":
        return (sum(int(d) * w for d, w in zip(s[2:9], [8, 7, 6, 5, 4, 3, 2]))
                + int(s[9:11])) % 97 == 0
    return False


def container_no(owner: str, serial: str) -> str:
    """ISO 6346 container number with a correct check digit."""
    vals = {}
    n = 10
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if n % 11 == 0:
            n += 1
        vals[ch] = n
        n += 1
    code = owner + serial
    total = sum((vals[ch] if ch.isalpha() else int(ch)) * 2 ** i for i, ch in enumerate(code))
    return code + str(total % 11 % 10)


# --------------------------------------------------------------------------------------------
# fillers (non-sensitive context)
# --------------------------------------------------------------------------------------------
MON_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
WD = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "de": ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi"],
    "nl": ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes"],
    "it": ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì"],
}
PRODUCTS = {
    "en": ["[BLT-M8] Hex bolt M8", "[PVC-110] PVC pipe 110 mm", "[VLV-050] Ball valve DN50",
           "[CBL-3x1.5] Cable NYM-J 3x1.5", "[GLV-L] Nitrile gloves size L",
           "[TIL-ADH25] Tile adhesive 25 kg", "FRK-2200-B pallet forks"],
    "de": ["[BLT-M8] Sechskantschraube M8", "[VLV-050] Kugelhahn DN50", "[PVC-110] KG-Rohr 110 mm",
           "[SIL-300] Sanitärsilikon 300 ml", "[WC-SP2] Spülkasten Unterputz"],
    "fr": ["[BLT-M8] Vis hexagonale M8", "[VLV-050] Vanne à boisseau DN50",
           "[GLV-L] Gants nitrile taille L", "[PVC-110] Tube PVC 110 mm"],
    "nl": ["[BLT-M8] Zeskantbout M8", "[VLV-050] Kogelkraan DN50", "[PVC-110] PVC-buis 110 mm",
           "[SIL-300] Sanitairkit 300 ml"],
    "es": ["[BLT-M8] Tornillo hexagonal M8", "[VLV-050] Válvula de bola DN50"],
    "it": ["[BLT-M8] Bullone esagonale M8", "[VLV-050] Valvola a sfera DN50"],
}
QTY = {
    "en": ["5000 pcs", "12 pallets", "3.5 kg", "120 m", "48 boxes", "200 pcs", "6 drums"],
    "de": ["5000 Stk.", "12 Paletten", "3,5 kg", "120 m", "48 Kartons", "200 Stück"],
    "fr": ["5000 pièces", "12 palettes", "3,5 kg", "120 m", "48 cartons"],
    "nl": ["5000 stuks", "12 pallets", "3,5 kg", "120 m", "48 dozen"],
    "es": ["5000 unidades", "12 palés", "120 m"],
    "it": ["5000 pezzi", "12 bancali", "120 m"],
}
CITIES = {
    "en": ["Chicago", "Milwaukee", "Rotterdam", "Antwerp", "Hamburg", "Leeds"],
    "de": ["München", "Nürnberg", "Stuttgart", "Hamburg", "Duisburg", "Kassel"],
    "fr": ["Lyon", "Lille", "Marseille", "Le Havre", "Nantes"],
    "nl": ["Venlo", "Rotterdam", "Tilburg", "Utrecht", "Zwolle"],
    "es": ["Valencia", "Zaragoza"], "it": ["Genova", "Verona"],
}
TRACKING = ["1Z999AA10123456784", "JJD0099999999", "1Z12345E0205271688", "JJD0001234567890",
            "00340434161094042557", "CZ123456789DE"]
CONTAINERS = [container_no("MSCU", "123456"), container_no("CSQU", "305438"),
              container_no("TGHU", "765432"), container_no("MAEU", "481516")]


class Pool:
    """Cycling draw of values per language (falls back to any language)."""

    def __init__(self, entries):
        self.by_lang: dict[str, list] = {}
        for lang, val in entries:
            self.by_lang.setdefault(lang, []).append(val)
        self.pos = Counter()

    def draw(self, lang):
        if lang not in self.by_lang:
            lang = "en" if "en" in self.by_lang else next(iter(self.by_lang))
        lst = self.by_lang[lang]
        v = lst[self.pos[lang] % len(lst)]
        self.pos[lang] += 1
        return v


POOLS: dict[str, Pool] = {}


class Person:
    def __init__(self, first, last, g):
        self.first_raw, self.last_raw, self.g = first, last, g

    @property
    def full(self):
        return PE(f"{self.first_raw} {self.last_raw}")

    @property
    def first(self):
        return PE(self.first_raw)

    @property
    def last(self):  # surname standing alone (Dutch tussenvoegsel capitalised)
        return PE(self.last_raw[0].upper() + self.last_raw[1:])


class Ctx:
    def __init__(self, lang, **forced):
        r = rng
        self.lang = lang
        self.forced = dict(forced)
        self.so = f"S{r.randint(12, 980):05d}"
        self.po = f"P{r.randint(12, 640):05d}"
        self.pick = r.choice(["WH/OUT/", "WH/OUT/", "LYO/OUT/", "HAM/OUT/"]) + f"{r.randint(100, 999):05d}"
        self.whin = f"WH/IN/{r.randint(100, 999):05d}"
        self.inv = f"INV/2026/{r.randint(10, 480):05d}"
        self.rma = f"RMA/2026/{r.randint(1, 99):04d}"
        self.lot = f"LOT-2026-{r.randint(10, 12):02d}-{r.randint(1, 120):04d}"
        d = dt.date(2026, 11, 2) + dt.timedelta(days=r.randint(0, 55))
        self.iso = d.isoformat()
        self.de = d.strftime("%d.%m.%Y")
        self.fr = d.strftime("%d/%m/%Y")
        self.nl = d.strftime("%d-%m-%Y")
        self.en = f"{MON_EN[d.month - 1]} {d.day}, {d.year}"
        self.time = r.choice(["06:00", "07:30", "08:15", "09:45", "11:00", "13:20", "14:30",
                              "16:00", "17:45"])
        self.n = r.randint(2, 24)
        self.pct = r.choice([20, 40, 50, 60, 75, 80, 90])
        L = lang if lang in PRODUCTS else "en"
        self.prod = r.choice(PRODUCTS[L])
        self.qty = r.choice(QTY[L])
        self.city = r.choice(CITIES[L])
        self.wd = r.choice(WD[L])
        self.trk = r.choice(TRACKING)
        self.ctr = r.choice(CONTAINERS)

    def _draw(self, kind, lang=None):
        if kind in self.forced:
            return self.forced.pop(kind)
        return POOLS[kind].draw(lang or self.lang)

    def email(self, lang=None): return EM(self._draw("email", lang))
    def phone(self, lang=None): return PH(self._draw("phone", lang))
    def iban(self, lang=None): return IB(self._draw("iban", lang))
    def card(self): return CC(self._draw("card", "any"))
    def vat(self, lang=None): return VAT(self._draw("vat", lang))
    def ip(self): return IP(self._draw("ip4", "any"))
    def ip6(self): return IP(self._draw("ip6", "any"))
    def money(self, lang=None): return MO(self._draw("money", lang))
    def addr(self, lang=None): return AD(self._draw("addr", lang))

    def empid(self, lang=None):
        lead, ident = self._draw("empid", lang)
        return f"{lead}{EID(ident)}"

    def p(self, g=None, lang=None):
        lang = lang or self.lang
        while True:
            f, l, gg = self._draw("person", lang)
            if g is None or gg == g:
                return Person(f, l, gg)

    def driver(self):
        f, l, g = self._draw("driver", "any")
        return Person(f, l, g)


# --------------------------------------------------------------------------------------------
# value pools
# --------------------------------------------------------------------------------------------
EMAILS = [
    ("en", "ap@lakeshore-supply.example.com"), ("en", "j.whitaker@example.com"),
    ("en", "invoices+2026@example.org"), ("en", "logistics.eu@example.net"),
    ("en", "t.nguyen@mail.example.com"), ("en", "orders@example.co.uk"),
    ("en", "rma-desk@example.com"), ("en", "RECEIVING.CHI@EXAMPLE.COM"),
    ("en", "d.o'neill@example.ie"), ("en", "purchasing_team@midwest-hvac.example"),
    ("en", "noreply@odoo.example.com"), ("en", "k.abara@warehouse.example.co.uk"),
    ("de", "einkauf@brandl-sanitaer.example.de"), ("de", "buchhaltung@example.de"),
    ("de", "s.kessler@hofmann-bau.example.de"), ("de", "dispo.nord@spedition.example.de"),
    ("de", "wareneingang@example.de"), ("de", "rechnungseingang@nordhafen.example.de"),
    ("de", "m.schulze@example.at"), ("de", "reklamation@example.de"),
    ("fr", "compta.fournisseurs@quincaillerie.example.fr"), ("fr", "c.lemaire@example.fr"),
    ("fr", "logistique@atelier-lumiere.example"), ("fr", "reception.quai2@example.fr"),
    ("fr", "sav@example.fr"), ("fr", "achats-lyon@example.fr"),
    ("nl", "inkoop@vanderberg.example.nl"), ("nl", "magazijn@example.nl"),
    ("nl", "crediteuren@example.nl"), ("nl", "j.devos@example.be"),
    ("nl", "planning.venlo@transport.example.nl"), ("nl", "orders@example.nl"),
    ("es", "pedidos@suministros-ortega.example.es"), ("es", "facturas@example.es"),
    ("it", "amministrazione@ferramenta-bianchi.example.it"), ("it", "logistica@example.it"),
]

PHONES = [
    # US (fictitious 555-01xx)
    ("en", "+1 312 555 0199"), ("en", "+1-312-555-0142"), ("en", "+1 (773) 555-0117"),
    ("en", "(312) 555-0199"), ("en", "312-555-0186"), ("en", "312.555.0123"),
    ("en", "+13125550164"), ("en", "(415) 555-0132"), ("en", "206-555-0178"),
    ("en", "1-800-555-0199"), ("en", "(262) 555-0150"),
    # UK (Ofcom drama ranges)
    ("en", "+44 20 7946 0958"), ("en", "+44 7700 900123"), ("en", "020 7946 0321"),
    ("en", "07700 900456"), ("en", "0113 496 0789"), ("en", "+44 161 496 0555"),
    ("en", "+44 (0)20 7946 0112"), ("en", "0161 496 0234"), ("en", "07700900987"),
    # DE
    ("de", "+49 30 1234567"), ("de", "+49 89 12345678"), ("de", "0049 89 1234567"),
    ("de", "030 12345678"), ("de", "089/1234567"), ("de", "0171 1234567"),
    ("de", "+49 171 2345678"), ("de", "0221 9876543"), ("de", "+49 (0)40 1234567"),
    ("de", "040-7654321"), ("de", "0151 23456789"), ("de", "+49 711 1234560"),
    ("de", "0711 123456-20"), ("de", "+43 1 2345678"), ("de", "0664 1234567"),
    # FR (ARCEP fiction ranges)
    ("fr", "01 99 00 12 34"), ("fr", "+33 1 99 00 45 67"), ("fr", "06 39 98 45 67"),
    ("fr", "+33 6 39 98 12 34"), ("fr", "04 65 71 23 45"), ("fr", "01.99.00.56.78"),
    ("fr", "0639984321"), ("fr", "+33 (0)4 65 71 88 90"), ("fr", "05 36 49 11 22"),
    ("fr", "03 53 01 40 50"),
    # NL
    ("nl", "020 123 4567"), ("nl", "06-12345678"), ("nl", "+31 20 123 4567"),
    ("nl", "+31 6 12345678"), ("nl", "010-1234567"), ("nl", "06 1234 5678"),
    ("nl", "+31 (0)10 765 4321"), ("nl", "0031 6 23456789"),
    # BE
    ("fr", "02 123 45 67"), ("nl", "0470 12 34 56"), ("fr", "+32 2 123 45 67"),
    ("nl", "+32 470 12 34 56"), ("nl", "03 234 56 78"), ("fr", "0032 470 98 76 54"),
    # ES
    ("es", "912 345 678"), ("es", "612 345 678"), ("es", "+34 912 345 678"),
    ("es", "+34 612 345 678"), ("es", "93 123 45 67"),
    # IT
    ("it", "06 1234 5678"), ("it", "347 123 4567"), ("it", "+39 06 1234 5678"),
    ("it", "+39 347 123 4567"), ("it", "02 1234 5678"), ("it", "+39 02 8765 4321"),
]

IBANS = []
for cc, lang, n in [("DE", "de", 8), ("FR", "fr", 5), ("NL", "nl", 5), ("BE", "fr", 3),
                    ("BE", "nl", 2), ("GB", "en", 6), ("ES", "es", 4), ("IT", "it", 4)]:
    for k in range(n):
        raw = make_iban(cc, BBAN[cc]())
        IBANS.append((lang, group4(raw) if k % 2 == 0 else raw))

CARDS = ["4111 1111 1111 1111", "5555555555554444", "378282246310005", "4012-8888-8888-1881",
         "5105 1051 0510 5100", "3714 496353 98431"]
for k in range(24):
    kind = ["visa", "mc", "amex"][k % 3]
    if kind == "visa":
        num = luhn_complete("4" + rand_digits(14))
    elif kind == "mc":
        num = luhn_complete("5" + str(rng.randint(1, 5)) + rand_digits(13))
    else:
        num = luhn_complete("37" + rand_digits(12))
    style = k % 4
    if kind == "amex":
        num = f"{num[:4]} {num[4:10]} {num[10:]}" if style != 1 else num
    elif style == 0:
        num = group4(num)
    elif style == 2:
        num = "-".join(num[i:i + 4] for i in range(0, 16, 4))
    CARDS.append(num)

VATS = []
for cc, lang, n in [("DE", "de", 7), ("AT", "de", 4), ("FR", "fr", 5), ("BE", "fr", 2),
                    ("BE", "nl", 2), ("NL", "nl", 5), ("GB", "en", 4), ("ES", "es", 3),
                    ("IT", "it", 4)]:
    for k in range(n):
        v = VAT_GEN[cc]()
        if k % 3 == 2 and cc != "AT":
            v = v[:2] + " " + v[2:]
        VATS.append((lang, v))

IP4 = ["203.0.113.42", "198.51.100.7", "192.0.2.15", "10.20.0.15", "192.168.1.254",
       "172.16.40.3", "203.0.113.250", "198.51.100.199", "10.0.5.21", "192.168.178.20",
       "172.31.255.1", "192.0.2.1", "100.64.12.9", "203.0.113.8", "10.10.3.77", "198.51.100.64"]
IP6 = ["2001:db8::1", "2001:db8:85a3::8a2e:370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
       "fe80::1ff:fe23:4567:890a", "2001:db8:0:0:1:0:0:1", "2001:db8:1234:5678::42", "::1",
       "2001:DB8::CAFE", "fd12:3456:789a:1::15", "2001:0db8:0000:0000:0000:ff00:0042:8329",
       "2001:db8::ff00:42:8329", "::ffff:192.0.2.128"]

NB = "\u00a0"   # no-break space
NNB = "\u202f"  # narrow no-break space (French thousands separator)
MONEY = [
    ("en", "$1,200.00"), ("en", "USD 3,450.00"), ("en", "3,450 USD"), ("en", "$12.5k"),
    ("en", "12.5k USD"), ("en", "£845.20"), ("en", "GBP 1,020.00"), ("en", "€12,400.50"),
    ("en", "EUR 980"), ("en", "$ 75.00"), ("en", "US$ 2,000"), ("en", "CHF 1'250.00"),
    ("en", "CHF 3,200.00"), ("en", "£1.2k"), ("en", "$18,750"), ("en", "2,400.00 EUR"),
    ("en", "$249,000"), ("en", "£12 400.00"), ("en", "USD 615.40"),
    ("de", "EUR 12.400,50"), ("de", "12.400,50 €"), ("de", "1.250,00 EUR"), ("de", "€ 980,00"),
    ("de", "3.200 €"), ("de", "CHF 1’850.50"), ("de", "15k €"), ("de", "48,90 €"),
    ("de", "EUR 7.315,20"), ("de", "2.480,00" + NB + "€"), ("de", "CHF 640.00"),
    ("fr", "1 200 €"), ("fr", f"1{NNB}200,00{NNB}€"), ("fr", f"12{NB}400,50 EUR"),
    ("fr", f"350,00{NB}€"), ("fr", "EUR 2 450,00"), ("fr", "5 k€"), ("fr", "CHF 980.00"),
    ("fr", "18 750 €"),
    ("nl", "€ 1.234,56"), ("nl", "EUR 560,00"), ("nl", "€ 89,95"), ("nl", "€12.400"),
    ("nl", "3.150,00 EUR"), ("nl", "€ 2,5k"),
    ("es", "1.250,00 €"), ("es", "EUR 3.400"), ("es", "860 €"),
    ("it", "€ 2.300,00"), ("it", "1.800,00 EUR"), ("it", "€ 95,50"),
]
PRICES_BARE = [("en", "14.20"), ("en", "0.85"), ("en", "3.10"), ("en", "1,249.00"),
               ("de", "14,20"), ("de", "1,09"), ("de", "3,85"), ("fr", "3,75"), ("fr", "12,40"),
               ("nl", "2,15"), ("nl", "0,98"), ("es", "4,60"), ("it", "7,80")]

ADDRESSES = [
    ("en", "1200 W Fulton Street, Chicago, IL 60607"),
    ("en", "455 N Lake Shore Drive, Chicago, IL 60611"),
    ("en", "88 Harbor Road, Kenosha, WI 53140"), ("en", "3100 S Ashland Ave"),
    ("en", "742 Industrial Pkwy, Gary, IN 46402"), ("en", "15 Commerce Blvd, Joliet, IL 60431"),
    ("en", "221B Baker Street, London NW1 6XE"), ("en", "7 Riverside Way, Leeds LS11 5JT"),
    ("en", "3 Dock Street, Hull HU1 3DL"), ("en", "41 Canal Street, Manchester M1 3HE"),
    ("de", "Leopoldstraße 12, 80802 München"), ("de", "Industriestr. 7a, 70565 Stuttgart"),
    ("de", "Am Hafen 3, 20457 Hamburg"), ("de", "Hauptstraße 45, 10827 Berlin"),
    ("de", "Gewerbepark Nord 18, 90411 Nürnberg"), ("de", "Lindenallee 4-6, 50968 Köln"),
    ("de", "Mariahilfer Straße 101, 1060 Wien"), ("de", "Leopoldstraße 12"),
    ("fr", "12 rue de la Paix, 75002 Paris"), ("fr", "45 avenue Jean Jaurès, 69007 Lyon"),
    ("fr", "3, boulevard de la Liberté, 59000 Lille"), ("fr", "18 quai de la Fosse, 44000 Nantes"),
    ("fr", "7 bis rue des Entrepreneurs, 13015 Marseille"),
    ("fr", "Rue du Commerce 52, 1000 Bruxelles"),
    ("nl", "Keizersgracht 123, 1015 CJ Amsterdam"), ("nl", "Stationsweg 45, 3011 AB Rotterdam"),
    ("nl", "Havenstraat 8, 5928 NB Venlo"), ("nl", "Industrieweg 21A, 3044 AS Rotterdam"),
    ("nl", "Kerkstraat 12, 2000 Antwerpen"),
    ("es", "Calle de Alcalá 45, 28014 Madrid"), ("it", "Via Roma 15, 20121 Milano"),
]

EMPIDS = [
    ("en", ("employee ", "EMP-10234")), ("en", ("", "EMP10234")), ("en", ("employee ID ", "4471")),
    ("en", ("employee no. ", "88213")), ("en", ("badge ", "B-2231")), ("en", ("badge no. ", "B-0917")),
    ("en", ("employee ", "EMP-20871")), ("en", ("employee ID ", "EMP-31005")),
    ("de", ("Personalnummer ", "88213")), ("de", ("Personalnummer ", "40917")),
    ("de", ("Mitarbeiter-Nr. ", "55102")), ("de", ("Ausweis ", "B-3318")),
    ("de", ("Mitarbeiter ", "EMP-10877")),
    ("fr", ("matricule ", "30412")), ("fr", ("badge ", "B-1174")), ("fr", ("salarié ", "EMP07712")),
    ("nl", ("personeelsnummer ", "7781")), ("nl", ("pasnummer ", "B-2290")),
    ("nl", ("medewerker ", "EMP-66120")),
]

PEOPLE = {
    "en": [("Laura", "Chen", "f"), ("Ravi", "Patel", "m"), ("Megan", "O'Connell", "f"),
           ("Derek", "Holloway", "m"), ("Priya", "Raman", "f"), ("Tom", "Whitfield", "m"),
           ("Sarah", "Lindqvist", "f"), ("Kevin", "Okafor", "m"), ("Emily", "Hargreaves", "f"),
           ("Daniel", "Brooks", "m"), ("Grace", "Thornton", "f"), ("Marcus", "Delaney", "m")],
    "de": [("Max", "Bauer", "m"), ("Stefanie", "Kessler", "f"), ("Jörg", "Hofstetter", "m"),
           ("Katrin", "Vogt", "f"), ("Uwe", "Lindner", "m"), ("Sabine", "Oberhuber", "f"),
           ("Tobias", "Reiter", "m"), ("Heike", "Brandstätter", "f"), ("Florian", "Göbel", "m"),
           ("Birgit", "Sauer", "f")],
    "fr": [("Camille", "Lefèvre", "f"), ("Julien", "Marchand", "m"), ("Élodie", "Fontaine", "f"),
           ("Nicolas", "Perrin", "m"), ("Sophie", "Garnier", "f"), ("Mathieu", "Roussel", "m"),
           ("Aurélie", "Chevalier", "f"), ("Thierry", "Blanchard", "m")],
    "nl": [("Iris", "Jansen", "f"), ("Daan", "Visser", "m"), ("Femke", "Bakker", "f"),
           ("Joost", "van Dijk", "m"), ("Lotte", "de Graaf", "f"), ("Pieter", "Smit", "m"),
           ("Eline", "Mulder", "f"), ("Bram", "Hendriks", "m")],
    "es": [("Lucía", "Fernández", "f"), ("Javier", "Moreno", "m"), ("Carmen", "Ruiz", "f")],
    "it": [("Giulia", "Ferrari", "f"), ("Marco", "Esposito", "m"), ("Paolo", "Conti", "m")],
}
DRIVERS = [("Piotr", "Nowak", "m"), ("Andrei", "Popescu", "m"), ("Mehmet", "Yılmaz", "m"),
           ("Tomasz", "Kowalczyk", "m"), ("Dragan", "Petrović", "m"), ("Ionuț", "Stanciu", "m")]

POOLS.update({
    "email": Pool(EMAILS), "phone": Pool(PHONES), "iban": Pool(IBANS),
    "card": Pool([("any", c) for c in CARDS]), "vat": Pool(VATS),
    "ip4": Pool([("any", x) for x in IP4]), "ip6": Pool([("any", x) for x in IP6]),
    "money": Pool(MONEY), "addr": Pool(ADDRESSES), "empid": Pool(EMPIDS),
    "person": Pool([(lang, p) for lang, ps in PEOPLE.items() for p in ps]),
    "driver": Pool([("any", d) for d in DRIVERS]),
})


def each(values, templates_by_lang, cat, per_value=1, **ctx_key):
    """One item per value, template chosen round-robin within the value's language."""
    pos = Counter()
    kind = ctx_key.get("kind")
    for lang, val in values:
        for _ in range(per_value):
            lst = templates_by_lang.get(lang) or templates_by_lang["en"]
            t = lst[pos[lang] % len(lst)]
            pos[lang] += 1
            c = Ctx(lang, **({kind: val} if kind else {}))
            add(cat, lang, t(c))


# ============================================================================================
# EMAIL
# ============================================================================================
T_EMAIL = {
    "en": [
        lambda c: f"Please send the corrected invoice for {c.so} to {c.email()} — our AP team cannot process {c.inv} without the PO number.",
        lambda c: f"From: {c.email()}\nSubject: Delayed receipt {c.whin}\n\nThe {c.n} pallets announced for {c.en} have not arrived yet.",
        lambda c: f"Can you add {c.email()} to the CC list for all shipping notifications of {c.so}?",
        lambda c: f"Mail delivery failed: <{c.email()}> mailbox full. Original message: order confirmation {c.so}.",
        lambda c: f"The portal invitation for {c.so} went to {c.email()} instead of {c.email()}.",
        lambda c: f"Questions about {c.rma}? Write to {c.email()} or reply to this message.",
        lambda c: f"Contact e-mail on file ({c.email()}) bounces, please update the partner record.",
        lambda c: f"Link in the reminder: mailto:{c.email()}?subject=Reminder%20{c.so}",
    ],
    "de": [
        lambda c: f"Bitte die Auftragsbestätigung zu {c.so} an {c.email()} schicken, nicht an die alte Adresse.",
        lambda c: f"Rechnungen ab sofort bitte ausschließlich per E-Mail an {c.email()}.",
        lambda c: f"Das Lieferavis für {c.pick} ging versehentlich an {c.email()}.",
        lambda c: f"Rückfragen zur Reklamation {c.rma} bitte an {c.email()} (Mo–Fr, 8–16 Uhr).",
        lambda c: f"Von: {c.email()}\nBetreff: Teillieferung {c.pick}\n\nDie restlichen {c.qty} kommen am {c.de}.",
    ],
    "fr": [
        lambda c: f"Merci d'adresser la facture {c.inv} à {c.email()}, en précisant le numéro de commande {c.so}.",
        lambda c: f"L'avis d'expédition pour {c.pick} doit être envoyé à {c.email()} et à {c.email()}.",
        lambda c: f"Pour toute question sur le retour {c.rma}, écrivez à {c.email()}.",
    ],
    "nl": [
        lambda c: f"Stuur de orderbevestiging van {c.so} graag naar {c.email()}.",
        lambda c: f"Facturen voortaan alleen nog naar {c.email()}, a.u.b.",
        lambda c: f"De pakbon van {c.pick} is per abuis naar {c.email()} gestuurd.",
    ],
    "es": [lambda c: f"Por favor, envíen la factura {c.inv} a {c.email()} antes del {c.fr}."],
    "it": [lambda c: f"Inviate la conferma d'ordine {c.so} a {c.email()}, grazie."],
}
each(EMAILS, T_EMAIL, "email", kind="email")
for lang in ["en", "de", "fr", "nl", "en", "de"]:  # a few more with different templates
    c = Ctx(lang)
    add("email", lang, T_EMAIL[lang][-1](c))

# ============================================================================================
# PHONE
# ============================================================================================
T_PHONE = {
    "en": [
        lambda c: f"Please call the receiving desk on {c.phone()} to book a slot for {c.pick}.",
        lambda c: f"New direct line for the site manager: {c.phone()}. The old number is no longer in use.",
        lambda c: f"Missed call from {c.phone()} at {c.time} regarding {c.so} — no voicemail left.",
        lambda c: f"If the truck is late again, escalate to dispatch: {c.phone()} (24/7).",
        lambda c: f"Customer asks for a call back about the damaged goods on {c.whin}: {c.phone()}",
        lambda c: f"Tel. {c.phone()} | Mobile {c.phone()}",
        lambda c: f"Receiving hours Mon–Fri 06:00–14:00. Questions: {c.phone()} or the portal.",
    ],
    "de": [
        lambda c: f"Bitte rufen Sie vor der Anlieferung unter {c.phone()} an (Zeitfenster für {c.pick}).",
        lambda c: f"Neue Durchwahl der Lagerleitung: {c.phone()}.",
        lambda c: f"Rückruf erbeten unter {c.phone()} wegen Auftrag {c.so}.",
        lambda c: f"Zentrale: {c.phone()}\nMobil: {c.phone()}",
        lambda c: f"Anlieferung nur nach telefonischer Avisierung ({c.phone()}), spätestens 24 h vorher.",
    ],
    "fr": [
        lambda c: f"Merci d'appeler le quai de réception au {c.phone()} avant de livrer {c.pick}.",
        lambda c: f"Nouveau numéro du responsable d'entrepôt : {c.phone()}.",
        lambda c: f"Appel manqué du {c.phone()} à {c.time} au sujet de la commande {c.so}.",
        lambda c: f"Tél. : {c.phone()} – Portable : {c.phone()}",
    ],
    "nl": [
        lambda c: f"Bel vóór levering even naar de ontvangst: {c.phone()} (order {c.so}).",
        lambda c: f"Nieuw nummer van de magazijnchef: {c.phone()}.",
        lambda c: f"Gemiste oproep van {c.phone()} om {c.time} over {c.pick}.",
        lambda c: f"Tel: {c.phone()} | Mobiel: {c.phone()}",
    ],
    "es": [
        lambda c: f"Por favor, llamen al almacén al {c.phone()} antes de entregar el pedido {c.so}.",
        lambda c: f"Teléfono de contacto para la recogida {c.rma}: {c.phone()}.",
    ],
    "it": [
        lambda c: f"Si prega di chiamare il magazzino al numero {c.phone()} prima della consegna {c.pick}.",
        lambda c: f"Nuovo numero del responsabile logistica: {c.phone()}.",
    ],
}
each(PHONES, T_PHONE, "phone", kind="phone")

# ============================================================================================
# IBAN
# ============================================================================================
T_IBAN = {
    "en": [
        lambda c: f"Please remit payment for {c.inv} to IBAN {c.iban()}, reference {c.so}.",
        lambda c: f"Our bank details have changed. New IBAN: {c.iban()} (effective {c.en}).",
        lambda c: f"Refund for {c.rma} should go to {c.iban()}, BIC NWBKGB2L.",
    ],
    "de": [
        lambda c: f"Bitte überweisen Sie den Betrag unter Angabe von {c.inv} auf IBAN {c.iban()}.",
        lambda c: f"Neue Bankverbindung ab {c.de}: IBAN {c.iban()}, BIC COBADEFFXXX",
        lambda c: f"Erstattung zu {c.rma} bitte auf das Konto {c.iban()} überweisen.",
    ],
    "fr": [
        lambda c: f"Merci d'effectuer le virement sur l'IBAN {c.iban()} en indiquant la référence {c.inv}.",
        lambda c: f"Nos coordonnées bancaires ont changé : IBAN {c.iban()}.",
    ],
    "nl": [
        lambda c: f"Gelieve het bedrag over te maken naar IBAN {c.iban()} o.v.v. {c.inv}.",
        lambda c: f"Nieuw rekeningnummer per {c.nl}: {c.iban()}",
    ],
    "es": [lambda c: f"Por favor, realicen la transferencia al IBAN {c.iban()} indicando {c.inv}."],
    "it": [lambda c: f"Si prega di effettuare il bonifico sull'IBAN {c.iban()} indicando {c.inv}."],
}
each(IBANS, T_IBAN, "iban", kind="iban")

# ============================================================================================
# CREDIT_CARD
# ============================================================================================
T_CARD = [
    ("en", lambda c: f"Customer read out the card number {c.card()} over the phone for {c.so} — never store this in the chatter."),
    ("en", lambda c: f"Payment declined for {c.so}: card {c.card()}."),
    ("en", lambda c: f"Web shop log {c.iso} {c.time}: checkout {c.so} with card {c.card()} failed 3-D Secure."),
    ("en", lambda c: f"Please charge the remaining balance for {c.inv} to card {c.card()}."),
    ("de", lambda c: f"Kunde hat die Kartennummer {c.card()} in die Nachricht zu {c.so} geschrieben."),
    ("de", lambda c: f"Zahlung für {c.so} abgelehnt, Karte {c.card()}."),
    ("fr", lambda c: f"Le client a communiqué sa carte {c.card()} pour régler la facture {c.inv}."),
    ("nl", lambda c: f"Betaling voor {c.so} mislukt met kaart {c.card()}."),
    ("es", lambda c: f"El cliente envió el número de tarjeta {c.card()} para el pedido {c.so}."),
    ("it", lambda c: f"Il cliente ha indicato la carta {c.card()} per la fattura {c.inv}."),
]
for k, num in enumerate(CARDS):
    lang, t = T_CARD[k % len(T_CARD)]
    add("card", lang, t(Ctx(lang, card=num)))

# ============================================================================================
# VAT_ID
# ============================================================================================
T_VAT = {
    "en": [
        lambda c: f"Reverse charge applies: customer VAT ID {c.vat()}, invoice {c.inv}.",
        lambda c: f"Please add the VAT number {c.vat()} to the partner record before validating {c.inv}.",
        lambda c: f"VIES check for {c.vat()} returned 'valid' on {c.en}.",
    ],
    "de": [
        lambda c: f"USt-IdNr. des Kunden: {c.vat()} – bitte auf Rechnung {c.inv} angeben.",
        lambda c: f"Steuerfreie innergemeinschaftliche Lieferung, USt-IdNr. {c.vat()}",
        lambda c: f"Die UID-Nummer {c.vat()} wurde am {c.de} über VIES geprüft.",
    ],
    "fr": [
        lambda c: f"Numéro de TVA intracommunautaire : {c.vat()}",
        lambda c: f"Autoliquidation – TVA client {c.vat()}, facture {c.inv}.",
    ],
    "nl": [
        lambda c: f"Btw-nummer klant: {c.vat()} (btw verlegd), factuur {c.inv}.",
        lambda c: f"Graag het btw-id {c.vat()} toevoegen aan de relatiekaart.",
    ],
    "es": [lambda c: f"NIF-IVA del cliente: {c.vat()} – factura {c.inv}."],
    "it": [lambda c: f"Partita IVA: {c.vat()} – fattura {c.inv}."],
}
each(VATS, T_VAT, "vat", kind="vat")

# ============================================================================================
# IP_ADDRESS
# ============================================================================================
T_IP4 = [
    ("en", lambda c: f"{c.iso} 06:00:01,512 WARNING odoo.http: failed login for user 'admin' from {c.ip()}"),
    ("en", lambda c: f"Staging Odoo is reachable at {c.ip()}:8069 until the migration on {c.en}."),
    ("en", lambda c: f"X-Forwarded-For: {c.ip()}, {c.ip()}"),
    ("en", lambda c: f"Firewall blocked {c.n * 40} requests from {c.ip()} between 02:00 and 02:15."),
    ("de", lambda c: f"Der Etikettendrucker in Halle 2 hat die IP {c.ip()}."),
    ("fr", lambda c: f"Le terminal du quai 4 utilise l'adresse {c.ip()} (DHCP réservé)."),
    ("nl", lambda c: f"De scanner bij dock 3 heeft IP-adres {c.ip()} gekregen."),
    ("en", lambda c: f"Connection from {c.ip()} port 51234 closed by peer."),
]
T_IP6 = [
    ("en", lambda c: f"API key rotated after suspicious calls from {c.ip6()} on {c.en}."),
    ("en", lambda c: f"n8n webhook called from [{c.ip6()}]:5678 at {c.time}."),
    ("de", lambda c: f"Zugriff auf die Odoo-Datenbank von {c.ip6()} wurde blockiert."),
    ("fr", lambda c: f"Adresse IPv6 du serveur d'impression : {c.ip6()}"),
    ("nl", lambda c: f"Inlogpoging vanaf {c.ip6()} geweigerd."),
    ("en", lambda c: f"{c.iso} 02:14:07 INFO werkzeug: {c.ip6()} - - \"POST /web/login HTTP/1.1\" 303 -"),
]
for k in range(len(IP4)):
    lang, t = T_IP4[k % len(T_IP4)]
    add("ip", lang, t(Ctx(lang)))
for k in range(len(IP6)):
    lang, t = T_IP6[k % len(T_IP6)]
    add("ip", lang, t(Ctx(lang)))

# ============================================================================================
# MONEY
# ============================================================================================
T_MONEY = {
    "en": [
        lambda c: f"Invoice {c.inv} for {c.so} totals {c.money()}; payment is due on {c.en}.",
        lambda c: f"The surcharge for the rush delivery of {c.pick} will be {c.money()}.",
        lambda c: f"Customer disputes {c.inv}: they were quoted {c.money()} but billed {c.money()}.",
        lambda c: f"Credit note issued for {c.rma}: {c.money()} will be offset against the next invoice.",
        lambda c: f"Please approve {c.po}, value {c.money()}, before {c.time} today.",
        lambda c: f"Open balance on the account is {c.money()} as of {c.en}.",
    ],
    "de": [
        lambda c: f"Die Rechnung {c.inv} über {c.money()} ist am {c.de} fällig.",
        lambda c: f"Für die Expresszustellung von {c.pick} berechnen wir {c.money()} zusätzlich.",
        lambda c: f"Gutschrift zu {c.rma}: {c.money()} werden mit der nächsten Rechnung verrechnet.",
        lambda c: f"Bestellung {c.po} mit einem Wert von {c.money()} bitte bis {c.time} Uhr freigeben.",
        lambda c: f"Offener Posten: {c.money()} (Stand {c.de}).",
    ],
    "fr": [
        lambda c: f"La facture {c.inv} d'un montant de {c.money()} est payable au {c.fr}.",
        lambda c: f"Frais de livraison express pour {c.pick} : {c.money()}.",
        lambda c: f"Avoir émis pour le retour {c.rma} : {c.money()}.",
        lambda c: f"Le client conteste la facture {c.inv} : devis à {c.money()}, facturé {c.money()}.",
    ],
    "nl": [
        lambda c: f"Factuur {c.inv} van {c.money()} vervalt op {c.nl}.",
        lambda c: f"Voor de spoedlevering van {c.pick} rekenen we {c.money()} extra.",
        lambda c: f"Creditnota voor {c.rma}: {c.money()}.",
    ],
    "es": [lambda c: f"La factura {c.inv} por importe de {c.money()} vence el {c.fr}."],
    "it": [lambda c: f"La fattura {c.inv} di {c.money()} scade il {c.fr}."],
}
each(MONEY, T_MONEY, "money", kind="money")

_bare = Pool(PRICES_BARE)
T_PRICE = {
    "en": [
        lambda c: f"Price change for {c.prod}: unit price {MO(_bare.draw('en'))} (was {MO(_bare.draw('en'))}) effective {c.en}.",
        lambda c: f"Quote line 3 – {c.qty} {c.prod}, unit price: {MO(_bare.draw('en'))}",
    ],
    "de": [
        lambda c: f"Neuer Preis ab {c.de} für {c.prod} – Preis: {MO(_bare.draw('de'))} pro Stück.",
        lambda c: f"Position 2: {c.qty} {c.prod}, Einzelpreis {MO(_bare.draw('de'))}",
    ],
    "fr": [lambda c: f"Nouveau tarif pour {c.prod} : prix unitaire {MO(_bare.draw('fr'))} HT à partir du {c.fr}."],
    "nl": [lambda c: f"Nieuwe prijs voor {c.prod}: stuksprijs {MO(_bare.draw('nl'))}, geldig vanaf {c.nl}."],
    "es": [lambda c: f"Precio unitario {MO(_bare.draw('es'))} para {c.prod} desde el {c.fr}."],
    "it": [lambda c: f"Prezzo unitario {MO(_bare.draw('it'))} per {c.prod} dal {c.fr}."],
}
for lang in ["en", "en", "de", "de", "fr", "nl", "es", "it", "en", "de"]:
    t = T_PRICE[lang][_counters["money"] % len(T_PRICE[lang])]
    add("money", lang, t(Ctx(lang)))

# ============================================================================================
# EMPLOYEE_ID
# ============================================================================================
T_EMP = {
    "en": [
        lambda c: f"Shift report {c.en}: forklift 3 was signed out by {c.empid()} at {c.time}.",
        lambda c: f"Overtime for {c.empid()} on {c.en} approved (2.5 h).",
        lambda c: f"Access denied for {c.empid()} at Gate 2, {c.time}.",
        lambda c: f"Please reset the scanner PIN for {c.empid()}.",
    ],
    "de": [
        lambda c: f"Schichtbericht {c.de}: Stapler 3 wurde um {c.time} Uhr von {c.empid()} übernommen.",
        lambda c: f"Überstunden für {c.empid()} am {c.de} genehmigt.",
        lambda c: f"Zutritt verweigert für {c.empid()} an Tor 2.",
    ],
    "fr": [
        lambda c: f"Chariot 3 pris à {c.time} par le {c.empid()}.",
        lambda c: f"Heures supplémentaires validées pour le {c.empid()}.",
    ],
    "nl": [
        lambda c: f"Heftruck 3 om {c.time} uitgecheckt door {c.empid()}.",
        lambda c: f"Overuren voor {c.empid()} goedgekeurd.",
    ],
}
each(EMPIDS, T_EMP, "empid", kind="empid")
T_EMP_PERSON = [
    ("en", lambda c: (lambda p: f"{p.full} ({c.empid()}) called in sick for the early shift on {c.en}.")(c.p())),
    ("de", lambda c: (lambda p: f"Schichtplan {c.de}: {p.full} (Personalnummer {EID(str(rng.randint(10000, 99999)))}) übernimmt die Spätschicht.")(c.p())),
    ("nl", lambda c: (lambda p: f"{p.full}, {c.empid()}, heeft de heftruckcursus afgerond.")(c.p())),
    ("fr", lambda c: (lambda p: f"{p.full} ({c.empid()}) remplace le chef d'équipe jeudi.")(c.p())),
    ("en", lambda c: f"Employee {EID('EMP-' + str(rng.randint(10000, 99999)))} badge reissued on {c.en}."),
]
for lang, t in T_EMP_PERSON:
    add("empid", lang, t(Ctx(lang)))

# ============================================================================================
# POSTAL_ADDRESS
# ============================================================================================
T_ADDR = {
    "en": [
        lambda c: f"Ship to: {c.addr()}\nRef: {c.so}",
        lambda c: f"Please change the delivery address of {c.so} to {c.addr()} — the old site closed on {c.en}.",
        lambda c: f"The truck couldn't find {c.addr()}; the loading dock is behind the building.",
        lambda c: f"Pickup for {c.rma} at {c.addr()} on {c.en}, between {c.time} and 17:00.",
    ],
    "de": [
        lambda c: f"Lieferadresse: {c.addr()}\nAuftrag: {c.so}",
        lambda c: f"Bitte die Lieferanschrift für {c.so} auf {c.addr()} ändern.",
        lambda c: f"Abholung der Retoure {c.rma} bei {c.addr()} am {c.de}.",
    ],
    "fr": [
        lambda c: f"Adresse de livraison : {c.addr()}\nCommande : {c.so}",
        lambda c: f"Merci de livrer la commande {c.so} à l'adresse suivante : {c.addr()}.",
    ],
    "nl": [
        lambda c: f"Afleveradres: {c.addr()}\nOrder: {c.so}",
        lambda c: f"Graag het afleveradres van {c.so} wijzigen naar {c.addr()}.",
    ],
    "es": [lambda c: f"Dirección de entrega: {c.addr()}. Pedido {c.so}."],
    "it": [lambda c: f"Indirizzo di consegna: {c.addr()} – ordine {c.so}."],
}
each(ADDRESSES, T_ADDR, "addr", kind="addr")

# ============================================================================================
# PERSON (free text only)
# ============================================================================================
def _title_en(p): return {"m": "Mr.", "f": rng.choice(["Mrs.", "Ms."])}[p.g]


T_PERSON = {
    "en": [
        lambda c, p, q: f"Dear {_title_en(p)} {p.last},\n\nthe delivery for {c.so} has been moved to {c.en}.\n\nRegards,\n{q.full}",
        lambda c, p, q: f"Spoke with {p.first} at the dock — the {c.n} pallets for {c.pick} are staged at gate 3.",
        lambda c, p, q: f"attn {p.full}, Receiving Dept. – {c.so}, {c.n} pallets",
        lambda c, p, q: f"contact: {p.full} (warehouse lead), shift starts {c.time}",
        lambda c, p, q: f"Hi {p.first}, can you confirm the receipt of {c.whin}? Thanks, {q.first}",
        lambda c, p, q: f"Dr. {p.last} from the QA lab asked for samples from lot {c.lot}.",
        lambda c, p, q: f"{_title_en(p)} {p.last} will sign for the delivery on {c.wd}.",
        lambda c, p, q: f"Please ask {p.full} to release the blocked lot {c.lot} before {c.time}.",
    ],
    "de": [
        lambda c, p, q: f"Sehr {'geehrter Herr' if p.g == 'm' else 'geehrte Frau'} {p.last},\n\nIhre Bestellung {c.so} wird am {c.de} ausgeliefert.\n\nMit freundlichen Grüßen\n{q.full}",
        lambda c, p, q: f"Habe mit {p.first} an der Rampe gesprochen – {c.n} Paletten für {c.pick} stehen bereit.",
        lambda c, p, q: f"z. Hd. {p.full}, Wareneingang",
        lambda c, p, q: f"Ansprechpartner: {p.full}, Lager {c.city}",
        lambda c, p, q: f"Hallo {p.first}, kannst du den Wareneingang {c.whin} noch heute buchen? Danke, {q.first}",
        lambda c, p, q: f"Dr. {p.last} aus der Qualitätssicherung hat die Charge {c.lot} freigegeben.",
    ],
    "fr": [
        lambda c, p, q: f"Bonjour {p.full},\n\nla commande {c.so} sera livrée le {c.fr}.\n\nCordialement,\n{q.full}",
        lambda c, p, q: f"{'Monsieur' if p.g == 'm' else 'Madame'} {p.last}, nous avons bien reçu votre réclamation concernant {c.pick}.",
        lambda c, p, q: f"{'M.' if p.g == 'm' else 'Mme'} {p.last} passera récupérer la marchandise {c.wd}.",
        lambda c, p, q: f"À l'attention de {p.full}, service réception",
        lambda c, p, q: f"J'ai parlé avec {p.first} au quai : les {c.n} palettes de {c.pick} sont prêtes.",
    ],
    "nl": [
        lambda c, p, q: f"Beste {p.first},\n\nde levering van {c.so} is verschoven naar {c.nl}.\n\nMet vriendelijke groet,\n{q.full}",
        lambda c, p, q: f"Geachte {'heer' if p.g == 'm' else 'mevrouw'} {p.last},\n\nuw klacht over {c.pick} is in behandeling.",
        lambda c, p, q: f"Vandaag haalt {'dhr.' if p.g == 'm' else 'mevr.'} {p.last} de goederen op.",
        lambda c, p, q: f"{'Meneer' if p.g == 'm' else 'Mevrouw'} {p.last} heeft de creditnota voor {c.inv} goedgekeurd.",
        lambda c, p, q: f"T.a.v. {p.full}, afdeling inkoop",
        lambda c, p, q: f"Even gesproken met {p.first} in het magazijn: {c.pick} gaat morgen mee.",
    ],
    "es": [
        lambda c, p, q: f"Estimado {'Sr.' if p.g == 'm' else 'Sra.'} {p.last}: su pedido {c.so} sale hoy del almacén.\n\nSaludos,\n{q.full}",
    ],
    "it": [
        lambda c, p, q: f"Gentile {'Sig.' if p.g == 'm' else 'Sig.ra'} {p.last}, la consegna dell'ordine {c.so} è prevista per il {c.fr}.\n\nCordiali saluti,\n{q.full}",
    ],
}
_plan = ["en"] * 12 + ["de"] * 10 + ["fr"] * 8 + ["nl"] * 8 + ["es", "es", "it", "it"]
_pos = Counter()
for lang in _plan:
    t = T_PERSON[lang][_pos[lang] % len(T_PERSON[lang])]
    _pos[lang] += 1
    c = Ctx(lang)
    p = c.p()
    q = c.p()
    while q.last_raw == p.last_raw:
        q = c.p()
    add("person", lang, t(c, p, q))

T_DRIVER = [
    ("en", lambda c, d: f"Driver {d.full} called: stuck in traffic near {c.city}, ETA {c.time}."),
    ("de", lambda c, d: f"Fahrer {d.full} meldet Stau vor {c.city}, Ankunft ca. {c.time} Uhr."),
    ("fr", lambda c, d: f"Le chauffeur {d.full} signale un retard d'environ deux heures."),
    ("nl", lambda c, d: f"Chauffeur {d.full} staat in de file bij {c.city}, verwachte aankomst {c.time}."),
    ("en", lambda c, d: f"driver {d.full} refused to wait for the re-count of {c.pick}"),
    ("de", lambda c, d: f"Der Fahrer ({d.first}) hat den Lieferschein {c.pick} ohne Stempel mitgenommen."),
]
for lang, t in T_DRIVER:
    c = Ctx(lang)
    add("person", lang, t(c, c.driver()))

# ============================================================================================
# PERSON_KNOWN
# ============================================================================================
class KP:
    def __init__(self, first, last, g, lang, translit, locals_, domain, org=None):
        self.first, self.last, self.g, self.lang = first, last, g, lang
        self.translit, self.locals, self.domain, self.org = translit, locals_, domain, org

    @property
    def canonical(self):
        return f"{self.first} {self.last}"

    def variants(self):
        """All surface strings that count as PERSON_KNOWN (used by the leak check)."""
        v = {self.canonical, self.first, self.last, self.last[0].upper() + self.last[1:]}
        for t in self.translit:
            v.add(t)
            f, _, l = t.partition(" ")
            v.update({f, l})
        return v


KNOWN_PEOPLE = [
    KP("Anna", "Müller", "f", "de", ["Anna Mueller", "Anna Muller"], ["anna.mueller", "a.mueller"], "brandl-sanitaer.example.de", "Brandl Sanitär GmbH"),
    KP("Jürgen", "Weiß", "m", "de", ["Juergen Weiss", "Jurgen Weiss"], ["juergen.weiss"], "hoffmann-soehne.example.de", "Hoffmann & Söhne KG"),
    KP("Günther", "Krüger", "m", "de", ["Guenther Krueger", "Gunther Kruger"], ["g.krueger"], "nordhafen.example.de", "Nordhafen Logistik GmbH"),
    KP("Dominik", "Schäfer", "m", "de", ["Dominik Schaefer", "Dominik Schafer"], ["dominik.schaefer"], "brandl-sanitaer.example.de", "Brandl Sanitär GmbH"),
    KP("Zoë", "Hartmann", "f", "en", ["Zoe Hartmann"], ["zoe.hartmann"], "lakeshore-supply.example.com", "Lakeshore Industrial Supply Inc."),
    KP("François", "Dubois", "m", "fr", ["Francois Dubois"], ["francois.dubois"], "quincaillerie-moreau.example.fr", "Quincaillerie Moreau SARL"),
    KP("Hélène", "Girard", "f", "fr", ["Helene Girard"], ["helene.girard"], "atelier-lumiere.example", "Atelier Lumière SAS"),
    KP("Renée", "Vasseur", "f", "fr", ["Renee Vasseur"], ["r.vasseur"], "quincaillerie-moreau.example.fr", "Quincaillerie Moreau SARL"),
    KP("José", "Martínez", "m", "es", ["Jose Martinez"], ["jose.martinez"], "suministros-ortega.example.es", "Suministros Ortega S.L."),
    KP("Łukasz", "Wiśniewski", "m", "en", ["Lukasz Wisniewski"], ["lukasz.wisniewski"], "lakeshore-supply.example.com", "Lakeshore Industrial Supply Inc."),
    KP("Björn", "Åkesson", "m", "en", ["Bjorn Akesson", "Bjoern Aakesson"], ["bjorn.akesson"], "example.se"),
    KP("Søren", "Kjær", "m", "en", ["Soren Kjaer", "Soeren Kjaer"], ["soren.kjaer"], "example.dk"),
    KP("Sanne", "de Vries", "f", "nl", [], ["sanne.devries"], "vanderberg.example.nl", "Van der Berg Techniek B.V."),
    KP("Margaret", "Sullivan", "f", "en", [], ["m.sullivan"], "lakeshore-supply.example.com", "Lakeshore Industrial Supply Inc."),
    KP("Thomas", "Becker", "m", "de", [], ["t.becker"], "hoffmann-soehne.example.de", "Hoffmann & Söhne KG"),
    KP("Ömer", "Çelik", "m", "de", ["Oemer Celik", "Omer Celik"], ["oemer.celik"], "nordhafen.example.de", "Nordhafen Logistik GmbH"),
    KP("Noor", "van den Berg", "f", "nl", [], ["noor.vandenberg"], "example.nl"),
    KP("Chiara", "Galli", "f", "it", [], ["c.galli"], "ferramenta-bianchi.example.it", "Ferramenta Bianchi S.r.l."),
]

T_PK_GENERIC = {
    "en": [
        lambda c, m: f"{m} from purchasing called about {c.so}: receipt {c.whin} is still open on our side.",
        lambda c, m: f"Please forward the signed delivery note for {c.pick} to {m} before {c.en}.",
        lambda c, m: f"Ticket update: {m} reports that {c.n} cartons of {c.prod} arrived damaged.",
        lambda c, m: f"Customer contact {m} confirmed the new delivery window for {c.so} ({c.en}, {c.time}).",
        lambda c, m: f"Reminder: {m} is still waiting for the credit note on {c.inv}.",
        lambda c, m: f"As agreed with {m}, {c.so} will be split into two shipments.",
    ],
    "de": [
        lambda c, m: f"{m} aus dem Einkauf hat wegen {c.so} angerufen – der Wareneingang {c.whin} ist bei uns noch offen.",
        lambda c, m: f"Bitte den unterschriebenen Lieferschein zu {c.pick} bis {c.de} an {m} schicken.",
        lambda c, m: f"Laut {m} fehlen bei Lieferung {c.pick} noch {c.n} Kartons {c.prod}.",
        lambda c, m: f"Rückrufbitte von {m} zur Rechnung {c.inv}.",
        lambda c, m: f"Mit {m} abgestimmt: Auftrag {c.so} geht in zwei Teillieferungen raus.",
    ],
    "fr": [
        lambda c, m: f"{m} (service achats) demande un nouveau délai pour la commande {c.so}.",
        lambda c, m: f"Merci d'envoyer le bon de livraison {c.pick} à {m} avant le {c.fr}.",
        lambda c, m: f"D'après {m}, il manque encore {c.n} cartons sur la livraison {c.pick}.",
        lambda c, m: f"{m} attend toujours l'avoir sur la facture {c.inv}.",
    ],
    "nl": [
        lambda c, m: f"{m} van inkoop belde over order {c.so}; ontvangst {c.whin} staat bij ons nog open.",
        lambda c, m: f"Graag de getekende vrachtbrief van {c.pick} vóór {c.nl} naar {m} sturen.",
        lambda c, m: f"Volgens {m} ontbreken er nog {c.n} dozen bij levering {c.pick}.",
    ],
    "es": [
        lambda c, m: f"{m}, de compras, ha llamado por el pedido {c.so}; la recepción {c.whin} sigue abierta.",
        lambda c, m: f"Según {m}, faltan {c.n} cajas en el envío {c.pick}.",
    ],
    "it": [
        lambda c, m: f"{m} dell'ufficio acquisti ha chiamato per l'ordine {c.so}.",
        lambda c, m: f"Secondo {m} mancano ancora {c.n} cartoni nella consegna {c.pick}.",
    ],
}
TITLES = {"en": {"m": "Mr.", "f": "Ms."}, "de": {"m": "Herr", "f": "Frau"},
          "fr": {"m": "M.", "f": "Mme"}, "nl": {"m": "dhr.", "f": "mevrouw"},
          "es": {"m": "Sr.", "f": "Sra."}, "it": {"m": "Sig.", "f": "Sig.ra"}}
T_PK_TITLE = {
    "en": [
        lambda c, t, s, g: f"Dear {t} {s},\n\nthe backorder {c.pick} will ship on {c.en}. We apologise for the delay.\n\nKind regards,\nCustomer Service",
        lambda c, t, s, g: f"{t} {s} called twice about {c.inv} today.",
    ],
    "de": [
        lambda c, t, s, g: f"{'Sehr geehrter' if g == 'm' else 'Sehr geehrte'} {t} {s},\n\nIhre Bestellung {c.so} verlässt unser Lager am {c.de}.\n\nMit freundlichen Grüßen\nIhr Kundenservice",
        lambda c, t, s, g: f"{t} {s} bittet um Rückruf wegen {c.inv}.",
    ],
    "fr": [
        lambda c, t, s, g: f"Bonjour {t} {s},\n\nla commande {c.so} sera livrée le {c.fr}.\n\nCordialement,\nLe service client",
        lambda c, t, s, g: f"{t} {s} a rappelé au sujet de la facture {c.inv}.",
    ],
    "nl": [
        lambda c, t, s, g: f"Geachte {'heer' if g == 'm' else 'mevrouw'} {s},\n\nuw bestelling {c.so} wordt op {c.nl} geleverd.\n\nMet vriendelijke groet,\nKlantenservice",
        lambda c, t, s, g: f"Vanochtend belde {t} {s} over factuur {c.inv}.",
    ],
    "es": [lambda c, t, s, g: f"Estimado {t} {s}: su pedido {c.so} saldrá el {c.fr}."],
    "it": [lambda c, t, s, g: f"Gentile {t} {s}, l'ordine {c.so} partirà il {c.fr}."],
}
T_PK_REVERSED = {
    "en": lambda c, m: f"Requested by: {m} (Purchasing)\nOrder: {c.so}\nNeeded by: {c.en}",
    "de": lambda c, m: f"Ansprechpartner: {m}\nAuftrag: {c.so}\nLiefertermin: {c.de}",
    "fr": lambda c, m: f"Demandeur : {m}\nCommande : {c.so}\nDate souhaitée : {c.fr}",
    "nl": lambda c, m: f"Aanvrager: {m}\nOrder: {c.so}\nGewenste leverdatum: {c.nl}",
    "es": lambda c, m: f"Solicitante: {m}\nPedido: {c.so}",
    "it": lambda c, m: f"Richiedente: {m}\nOrdine: {c.so}",
}
T_PK_INITIAL = {
    "en": lambda c, m: f"Signed for by {m} on {c.en} at {c.time}.",
    "de": lambda c, m: f"Lieferschein {c.pick} quittiert von {m} am {c.de}.",
    "fr": lambda c, m: f"Bon de livraison {c.pick} signé par {m} le {c.fr}.",
    "nl": lambda c, m: f"Vrachtbrief {c.pick} afgetekend door {m} op {c.nl}.",
    "es": lambda c, m: f"Albarán {c.pick} firmado por {m} el {c.fr}.",
    "it": lambda c, m: f"DDT {c.pick} firmato da {m} il {c.fr}.",
}
T_PK_EMAIL = {
    "en": lambda c, e, f: f"Reply from {e}: {f} confirms that {c.so} can be delivered on {c.en}.",
    "de": lambda c, e, f: f"Antwort von {e}: {f} bestätigt den Liefertermin {c.de} für {c.so}.",
    "fr": lambda c, e, f: f"Réponse de {e} : {f} confirme la livraison de {c.so} le {c.fr}.",
    "nl": lambda c, e, f: f"Antwoord van {e}: {f} bevestigt levering van {c.so} op {c.nl}.",
    "es": lambda c, e, f: f"Respuesta de {e}: {f} confirma la entrega de {c.so} el {c.fr}.",
    "it": lambda c, e, f: f"Risposta da {e}: {f} conferma la consegna di {c.so} il {c.fr}.",
}
T_PK_SIGNOFF = {
    "en": lambda c, m: f"Thanks for the quick turnaround on {c.so}.\n\nBest,\n{m}",
    "de": lambda c, m: f"Danke für die schnelle Klärung zu {c.inv}.\n\nViele Grüße\n{m}",
    "fr": lambda c, m: f"Merci pour le suivi de {c.pick}.\n\nBien cordialement,\n{m}",
    "nl": lambda c, m: f"Bedankt voor de snelle levering van {c.so}.\n\nGroet,\n{m}",
    "es": lambda c, m: f"Gracias por la rapidez con {c.so}.\n\nUn saludo,\n{m}",
    "it": lambda c, m: f"Grazie per la rapidità su {c.so}.\n\nCordiali saluti,\n{m}",
}

VARIANTS = ["exact", "upper", "translit", "reversed", "initial", "first", "title", "email",
            "lower", "signoff"]
_gen_pos = Counter()


def pk_item(kp: KP, variant: str, lang: str | None = None, with_org_known=False):
    lang = lang or kp.lang
    c = Ctx(lang)
    known = [kp.canonical] + ([kp.org] if with_org_known and kp.org else [])

    def generic(m):
        lst = T_PK_GENERIC[lang]
        t = lst[_gen_pos[lang] % len(lst)]
        _gen_pos[lang] += 1
        return t(c, m)

    if variant == "exact":
        body = generic(PK(kp.canonical))
    elif variant == "upper":
        body = generic(PK(kp.canonical.upper()))
    elif variant == "lower":
        body = {"en": f"fyi {PK(kp.canonical.lower())} says {c.pick} is still not on the truck",
                "de": f"info: {PK(kp.canonical.lower())} sagt, {c.pick} ist immer noch nicht verladen",
                "fr": f"pour info {PK(kp.canonical.lower())} dit que {c.pick} n'est toujours pas parti",
                "nl": f"ter info: {PK(kp.canonical.lower())} zegt dat {c.pick} nog steeds niet geladen is",
                }.get(lang) or generic(PK(kp.canonical.lower()))
    elif variant == "translit":
        body = generic(PK(kp.translit[_gen_pos["tr"] % len(kp.translit)]))
        _gen_pos["tr"] += 1
    elif variant == "reversed":
        body = T_PK_REVERSED[lang](c, PK(f"{kp.last}, {kp.first}"))
    elif variant == "initial":
        assert not (lang == "fr" and kp.first[0] == "M")
        body = T_PK_INITIAL[lang](c, PK(f"{kp.first[0]}. {kp.last}"))
    elif variant == "first":
        body = generic(PK(kp.first))
    elif variant == "title":
        s = kp.last[0].upper() + kp.last[1:]
        lst = T_PK_TITLE[lang]
        t = lst[_gen_pos["t" + lang] % len(lst)]
        _gen_pos["t" + lang] += 1
        body = t(c, TITLES[lang][kp.g], PK(s), kp.g)
    elif variant == "email":
        local = kp.locals[_gen_pos["em"] % len(kp.locals)]
        _gen_pos["em"] += 1
        body = T_PK_EMAIL[lang](c, EM(f"{local}@{kp.domain}"), PK(kp.first))
    elif variant == "signoff":
        body = T_PK_SIGNOFF[lang](c, PK(kp.canonical if _gen_pos["so"] % 2 else kp.first))
        _gen_pos["so"] += 1
    else:
        raise ValueError(variant)
    add("pknown", lang, body, known=known)


_vi = 0
for kp in KNOWN_PEOPLE:
    chosen = []
    while len(chosen) < 3:
        v = VARIANTS[_vi % len(VARIANTS)]
        _vi += 1
        if v == "translit" and not kp.translit:
            v = "upper"
        if v in chosen:
            continue
        chosen.append(v)
    for k, v in enumerate(chosen):
        pk_item(kp, v, with_org_known=(k == 1))

# known names used inside an otherwise-English thread for non-English people
pk_item(KNOWN_PEOPLE[0], "translit", "en")
pk_item(KNOWN_PEOPLE[0], "reversed", "de")
pk_item(KNOWN_PEOPLE[0], "email", "de", with_org_known=True)
pk_item(KNOWN_PEOPLE[0], "title", "de")
pk_item(KNOWN_PEOPLE[0], "initial", "de")
pk_item(KNOWN_PEOPLE[5], "title", "fr")
pk_item(KNOWN_PEOPLE[12], "title", "nl")
pk_item(KNOWN_PEOPLE[12], "reversed", "nl")
pk_item(KNOWN_PEOPLE[16], "title", "nl")
pk_item(KNOWN_PEOPLE[1], "translit", "de")
pk_item(KNOWN_PEOPLE[6], "translit", "en")
pk_item(KNOWN_PEOPLE[10], "exact", "en")

# known person + free-text person in the same message
for kp, lang in [(KNOWN_PEOPLE[0], "de"), (KNOWN_PEOPLE[4], "en"), (KNOWN_PEOPLE[6], "fr"),
                 (KNOWN_PEOPLE[12], "nl")]:
    c = Ctx(lang)
    other = c.p()
    tpl = {
        "de": f"Hallo {PK(kp.first)},\n\n{other.full} aus unserem Lager hat die {c.n} Paletten für {c.so} heute verladen.\n\nGruß\n{c.p().first}",
        "en": f"Hi {PK(kp.first)},\n\n{other.full} from our warehouse loaded the {c.n} pallets for {c.so} this morning.\n\nCheers,\n{c.p().first}",
        "fr": f"Bonjour {PK(kp.canonical)},\n\n{other.full}, de notre entrepôt, a chargé les {c.n} palettes de {c.so} ce matin.\n\nCordialement,\n{c.p().full}",
        "nl": f"Beste {PK(kp.first)},\n\n{other.full} van ons magazijn heeft de {c.n} pallets voor {c.so} vanochtend geladen.\n\nGroet,\n{c.p().first}",
    }[lang]
    add("pknown", lang, tpl, known=[kp.canonical])

# ============================================================================================
# ORG_KNOWN
# ============================================================================================
KNOWN_ORGS = [
    ("Brandl Sanitär GmbH", "de", ["Brandl Sanitär GmbH", "Brandl Sanitär", "BRANDL SANITÄR GMBH", "Brandl Sanitaer", "brandl sanitär"]),
    ("Lakeshore Industrial Supply Inc.", "en", ["Lakeshore Industrial Supply", "LAKESHORE INDUSTRIAL SUPPLY", "Lakeshore Industrial Supply, Inc"]),
    ("Van der Berg Techniek B.V.", "nl", ["Van der Berg Techniek", "van der Berg Techniek BV", "VAN DER BERG TECHNIEK"]),
    ("Quincaillerie Moreau SARL", "fr", ["Quincaillerie Moreau", "QUINCAILLERIE MOREAU", "Quincaillerie Moreau S.A.R.L"]),
    ("Hoffmann & Söhne KG", "de", ["Hoffmann & Söhne", "Hoffmann & Soehne KG", "HOFFMANN & SÖHNE"]),
    ("Ferramenta Bianchi S.r.l.", "it", ["Ferramenta Bianchi", "FERRAMENTA BIANCHI SRL"]),
    ("Suministros Ortega S.L.", "es", ["Suministros Ortega", "SUMINISTROS ORTEGA SL"]),
    ("Nordhafen Logistik GmbH", "de", ["Nordhafen Logistik", "NORDHAFEN LOGISTIK GMBH"]),
    ("Atelier Lumière SAS", "fr", ["Atelier Lumière", "Atelier Lumiere", "ATELIER LUMIÈRE SAS"]),
]
T_ORG = {
    "en": [lambda c, o: f"{o} has requested a delivery split for {c.so}.",
           lambda c, o: f"Overdue reminder sent to {o} for {c.inv} on {c.en}.",
           lambda c, o: f"Credit limit for {o} reached — {c.so} is on hold until payment."],
    "de": [lambda c, o: f"{o} hat die Teillieferung zu {c.so} abgelehnt.",
           lambda c, o: f"Zahlungserinnerung an {o} für {c.inv} verschickt.",
           lambda c, o: f"Kreditlimit für {o} erreicht, Auftrag {c.so} gesperrt."],
    "fr": [lambda c, o: f"{o} refuse la livraison partielle de {c.so}.",
           lambda c, o: f"Relance envoyée à {o} pour la facture {c.inv}."],
    "nl": [lambda c, o: f"{o} wil order {c.so} in één keer geleverd krijgen.",
           lambda c, o: f"Herinnering verstuurd naar {o} voor factuur {c.inv}."],
    "es": [lambda c, o: f"{o} ha solicitado dividir el pedido {c.so}.",
           lambda c, o: f"Recordatorio enviado a {o} por la factura {c.inv}."],
    "it": [lambda c, o: f"{o} ha chiesto di anticipare la consegna dell'ordine {c.so}.",
           lambda c, o: f"Sollecito inviato a {o} per la fattura {c.inv}."],
}
_opos = Counter()
for canonical, lang, forms in KNOWN_ORGS:
    for form in forms:
        lst = T_ORG[lang]
        t = lst[_opos[lang] % len(lst)]
        _opos[lang] += 1
        add("org", lang, t(Ctx(lang), OK(form)), known=[canonical])
# org + known contact person together, org mentioned in an English thread
c = Ctx("en")
add("org", "en", f"Call notes {c.en}: {PK('Anna Müller')} ({OK('Brandl Sanitär')}) wants {c.so} delivered before {c.wd}; Ms {PK('Müller')} will confirm by e-mail.",
    known=["Anna Müller", "Brandl Sanitär GmbH"])
c = Ctx("fr")
add("org", "fr", f"{OK('Quincaillerie Moreau')} : {PK('François Dubois')} demande la facture {c.inv} en double exemplaire.",
    known=["Quincaillerie Moreau SARL", "François Dubois"])

# ============================================================================================
# MIXED (several entity types per message)
# ============================================================================================
def mixed_en_invoice(c):
    p = c.p(lang="en")
    return (f"From: {p.full} <{c.email('en')}>\nSubject: Invoice {c.inv} – payment details\n\n"
            f"Hello,\n\nplease find attached invoice {c.inv} for order {c.so} over {c.money('en')}. "
            f"Kindly transfer the amount to IBAN {c.iban('en')} by {c.en}.\n\nBest regards,\n"
            f"{p.full}\nAccounts Receivable\nPhone: {c.phone('en')}\n{c.addr('en')}")


def mixed_de_invoice(c):
    p = c.p(lang="de")
    return (f"Sehr geehrte Damen und Herren,\n\nanbei die Rechnung {c.inv} über {c.money('de')}. "
            f"Bitte überweisen Sie den Betrag bis zum {c.de} auf folgendes Konto: IBAN {c.iban('de')}.\n"
            f"Unsere USt-IdNr.: {c.vat('de')}\n\nMit freundlichen Grüßen\n{p.full}\nBuchhaltung\n"
            f"Tel. {c.phone('de')}\n{c.email('de')}\n{c.addr('de')}")


def mixed_fr_contact(c):
    p = c.p(lang="fr")
    return (f"Bonjour,\n\nsuite à notre échange, voici nos coordonnées pour la commande {c.so} : "
            f"{c.addr('fr')}, TVA {c.vat('fr')}, IBAN {c.iban('fr')}.\n\nBien cordialement,\n"
            f"{p.full}\n{c.phone('fr')}")


def mixed_nl_contact(c):
    p = c.p(lang="nl")
    return (f"Goedemiddag,\n\nde {c.n} pallets voor order {c.so} staan klaar op {c.addr('nl')}. "
            f"Het openstaande bedrag is {c.money('nl')}; graag betalen op {c.iban('nl')}.\n"
            f"Btw-nummer: {c.vat('nl')}\n\nMet vriendelijke groet,\n{p.full}\n{c.phone('nl')}")


def mixed_log(c):
    return (f"{c.iso} 06:00:01 INFO odoo.addons.auth_signup: password reset requested for {c.email('en')} from {c.ip()}\n"
            f"{c.iso} 06:00:07 WARNING odoo.http: 3 failed logins for {c.email('de')} from {c.ip6()}")


def mixed_driver(c):
    d = c.driver()
    return (f"Driver {d.full} (mobile {c.phone('de')}) will deliver {c.n} pallets for {c.pick} to "
            f"{c.addr('en')} on {c.en} between 08:00 and 10:00. Ask security at the gate.")


def mixed_shift(c):
    p = c.p(lang="de")
    return (f"Schichtübergabe {c.de}: {p.full} ({c.empid('de')}) hat Stapler 3 um {c.time} Uhr "
            f"übernommen. Rückfragen an {c.email('de')} oder {c.phone('de')}.")


def mixed_payment(c):
    p = c.p(lang="en")
    return (f"Payment for {c.so} failed: card {c.card()} was declined (amount {c.money('en')}). "
            f"The customer, {p.full}, asked us to call back on {c.phone('en')}.")


def mixed_known_de(c):
    return (f"Kurze Notiz zum Telefonat mit {PK('Anna')} von {OK('Brandl Sanitär')}: {c.so} soll "
            f"nicht ins Zentrallager, sondern nach {c.addr('de')} geliefert werden. Mobil: {c.phone('de')}. "
            f"Rechnungskopie an {EM('anna.mueller@brandl-sanitaer.example.de')}.")


def mixed_known_nl(c):
    p = c.p(lang="nl")
    return (f"Beste {PK('Sanne')},\n\nde pallets voor {OK('Van der Berg Techniek')} staan klaar. Het "
            f"factuurbedrag van {c.inv} is {c.money('nl')}.\n\nMet vriendelijke groet,\n{p.full}")


def mixed_known_en(c):
    return (f"Escalation: {PK('Margaret Sullivan')} at {OK('Lakeshore Industrial Supply')} says the "
            f"{c.n} pallets of {c.prod} for {c.so} never arrived at {c.addr('en')}. She is reachable on "
            f"{c.phone('en')}; invoice {c.inv} ({c.money('en')}) stays blocked until Ms. {PK('Sullivan')} confirms receipt.")


def mixed_access(c):
    return (f"Access log {c.iso}: badge {EID('B-' + str(rng.randint(1000, 9999)))} used at Gate 2 at "
            f"{c.time}; workstation {c.ip()} then logged in as {c.email('en')}.")


MIXED = [
    ("en", mixed_en_invoice, []), ("de", mixed_de_invoice, []), ("fr", mixed_fr_contact, []),
    ("nl", mixed_nl_contact, []), ("en", mixed_log, []), ("en", mixed_driver, []),
    ("de", mixed_shift, []), ("en", mixed_payment, []),
    ("de", mixed_known_de, ["Anna Müller", "Brandl Sanitär GmbH"]),
    ("nl", mixed_known_nl, ["Sanne de Vries", "Van der Berg Techniek B.V."]),
    ("en", mixed_known_en, ["Margaret Sullivan", "Lakeshore Industrial Supply Inc."]),
    ("en", mixed_access, []),
]
for _round in range(2):
    for lang, fn, known in MIXED:
        add("mixed", lang, fn(Ctx(lang)), known=known)

# ============================================================================================
# NEGATIVES
# ============================================================================================
NEG_STATIC = [
    ("en", "The container is held at customs in Rotterdam until Friday."),
    ("en", "Receipt WH/IN/00456 for P00017 is 80% received; the remaining 2 pallets are expected on 2026-11-24."),
    ("en", "Picking WH/OUT/00123 was validated at 14:30 and handed over to the carrier."),
    ("en", "Please check why S00042 shows 5000 pcs ordered but only 4800 pcs delivered."),
    ("en", "[BLT-M8] Hex bolt M8 is back in stock: 12 pallets arrived this morning."),
    ("en", "Tracking 1Z999AA10123456784 shows the parcel is out for delivery."),
    ("en", f"Container {CONTAINERS[0]} was discharged at Antwerp on Nov 20, 2026."),
    ("en", "Lot LOT-2026-11-0042 is blocked for quality inspection until further notice."),
    ("en", "RMA/2026/0012 approved: 3 units of FRK-2200-B to be returned to the Lyon warehouse."),
    ("en", "The truck departs from the Hamburg hub every Monday and Thursday at 06:00."),
    ("en", "Invoice INV/2026/00077 has been posted and is due in 30 days."),
    ("en", "Transfer LYO/OUT/00214 is waiting for availability of [CBL-3x1.5] Cable NYM-J 3x1.5 mm², 120 m."),
    ("en", "Weight per pallet: 350 kg; dimensions 120 x 80 x 150 cm."),
    ("en", "DHL parcel JJD0099999999 was returned to sender."),
    ("en", "All orders placed before 12:00 are shipped the same day."),
    ("en", "Inventory count for zone B is scheduled for the last Saturday of November."),
    ("en", "The supplier confirmed a lead time of 3 weeks for the stainless steel fittings."),
    ("en", "Due to the strike at the port of Le Havre, shipments to France are delayed by 2–3 days."),
    ("en", "We received 11 of 12 pallets; pallet 7 is missing from the delivery."),
    ("en", "Backorder WH/OUT/00124 created for the remaining 200 pcs."),
    ("en", "Odoo 17.0 migration is planned for Q1 2026."),
    ("en", "Cycle count variance: -3 pcs of [PVC-110] PVC pipe 110 mm."),
    ("en", "EAN 4006381333931 is assigned to the 25 kg bag of tile adhesive."),
    ("en", "HS code 7318.15.88 applies to the hex bolts in this shipment."),
    ("en", "Incoterms: DAP Rotterdam, delivery week 47."),
    ("en", "The forklift in aisle 14 is out of service until Wednesday."),
    ("en", "Please rebook the delivery slot from Tuesday 08:00 to Thursday 10:00."),
    ("en", "Stock at the Chicago warehouse is 0 for FRK-2200-B; the next receipt is due Dec 3, 2026."),
    ("en", "The shipment from the United States cleared customs on 2026-11-18."),
    ("en", "Temperature during transport must stay between 2 °C and 8 °C."),
    ("en", "Reorder point for [GLV-L] Nitrile gloves size L raised from 40 to 60 boxes."),
    ("en", "Route 12 is cancelled on Dec 24 and Dec 31; deliveries move to the following Monday."),
    ("en", "Pallet labels for S00318 were printed twice; please discard the second set."),
    ("en", "Customs released container CSQU3054383 after the X-ray check."),
    ("en", "Goods receipt 3 of 5 posted, 60% of the PO quantity is now on hand."),
    ("de", "Der Container steht bis Freitag beim Zoll in Rotterdam."),
    ("de", "Wareneingang WH/IN/00456 zu Bestellung P00017 ist zu 80 % gebucht."),
    ("de", "Lieferung WH/OUT/00123 wurde am 20.11.2026 um 14:30 Uhr verladen."),
    ("de", "Es fehlen noch 3 Kartons [BLT-M8] Sechskantschraube M8."),
    ("de", "Die Inventur im Lager Nürnberg findet in KW 48 statt."),
    ("de", "Charge LOT-2026-11-0042 ist bis auf Weiteres gesperrt."),
    ("de", "Bitte die Tour nach Stuttgart auf Donnerstag verschieben."),
    ("de", "Rechnung INV/2026/00077 wurde gebucht; Zahlungsziel 14 Tage netto."),
    ("de", "Der Lkw hat 2,5 t Zuladung und ist für Montag um 06:00 Uhr eingeplant."),
    ("de", "Die Rücksendung RMA/2026/0012 enthält 5 Stück FRK-2200-B."),
    ("de", "Lieferverzug wegen Glätte auf der A8 – neue Ankunft ca. 11:15 Uhr."),
    ("de", "Auftrag S00042 ist vollständig kommissioniert."),
    ("de", "Die Ware liegt im Hochregal, Gang 12, Fach 04."),
    ("de", "Die Sendung aus München ist heute Morgen im Lager Kassel eingetroffen."),
    ("de", "Mindestbestellmenge für [SIL-300] Sanitärsilikon 300 ml: 24 Stück."),
    ("fr", "Le conteneur est bloqué en douane à Anvers jusqu'à vendredi."),
    ("fr", "La réception WH/IN/00456 est reçue à 80 %, il manque 2 palettes."),
    ("fr", "Le transfert LYO/OUT/00214 partira de Lyon le 20/11/2026 à 06h00."),
    ("fr", "Merci de vérifier la commande S00042 : 5000 pièces commandées, 4800 livrées."),
    ("fr", "La facture INV/2026/00077 est échue depuis le 15 novembre."),
    ("fr", "Livraison prévue mardi matin entre 8 h et 10 h."),
    ("fr", "Le lot LOT-2026-11-0042 est en quarantaine qualité."),
    ("fr", "Le retour RMA/2026/0012 a été réceptionné à l'entrepôt de Lyon."),
    ("fr", "Poids total : 3,5 t pour 12 palettes."),
    ("fr", "Grève au port du Havre : retards de deux à trois jours sur les expéditions."),
    ("fr", "Le quai 3 est fermé pour travaux jusqu'au 2 décembre."),
    ("nl", "De container staat tot vrijdag bij de douane in Rotterdam."),
    ("nl", "Ontvangst WH/IN/00456 is voor 80% binnen; er ontbreken nog 2 pallets."),
    ("nl", "Levering WH/OUT/00123 is om 14:30 geladen."),
    ("nl", "Order S00042 wordt in twee zendingen geleverd."),
    ("nl", "Factuur INV/2026/00077 staat nog open."),
    ("nl", "De vrachtwagen vertrekt maandag om 06:00 vanuit Venlo."),
    ("nl", "Partij LOT-2026-11-0042 is geblokkeerd voor kwaliteitscontrole."),
    ("nl", "Er zijn 12 pallets met 120 m kabel per haspel ontvangen."),
    ("nl", "Levertijd voor [BLT-M8] Zeskantbout M8 is drie weken."),
    ("nl", "Door de storm op de A2 komt de levering pas na 16:00 aan."),
    ("es", "El contenedor sigue retenido en la aduana de Valencia hasta el viernes."),
    ("es", "La recepción WH/IN/00456 está al 80 %; faltan 2 palés."),
    ("it", "Il container è fermo in dogana a Genova fino a venerdì."),
    ("it", "L'ordine S00042 è stato spedito il 20/11/2026."),
    # short standalone tokens
    ("nl", "Rotterdam"), ("de", "München"), ("fr", "Lyon"), ("en", "United States"),
    ("en", "Nov 20, 2026"), ("de", "20.11.2026"), ("en", "2026-11-20 06:00:00"), ("en", "14:30"),
    ("en", "5000 pcs"), ("en", "LOT-2026-11-0042"), ("en", "1Z999AA10123456784"),
    ("en", "JJD0099999999"), ("en", CONTAINERS[0]), ("en", "WH/OUT/00123"),
    ("en", "INV/2026/00077"), ("en", "[BLT-M8] Hex bolt M8"), ("en", "FRK-2200-B"),
    ("en", "80% received"), ("en", "Friday"), ("de", "Dezember"), ("en", "S00042"),
    ("en", "P00017"), ("en", "WH/IN/00456"), ("en", "RMA/2026/0012"), ("fr", "LYO/OUT/00214"),
]
for lang, text in NEG_STATIC:
    add("neg", lang, text)
# hard negatives where a currency code is part of a product/pallet term, not an amount
add("neg", "de", "14 EUR-Paletten wurden heute in München angeliefert.", exempt={"currency"})
add("neg", "en", "Please return the 12 empty EUR pallets with the next truck.", exempt={"currency"})

T_NEG = [
    ("en", lambda c: f"Status {c.iso}: {c.pick} — {c.qty} of {c.prod} picked, waiting for the carrier."),
    ("en", lambda c: f"Receipt {c.whin} for {c.po} is {c.pct}% received; the rest is expected on {c.en}."),
    ("en", lambda c: f"Lot {c.lot} released by QA on {c.en} at {c.time}."),
    ("en", lambda c: f"Backorder created for {c.so}: {c.qty} still outstanding."),
    ("en", lambda c: f"Tracking {c.trk}: parcel in transit via {c.city}."),
    ("en", lambda c: f"Container {c.ctr} arrives {c.wd}; customs clearance pending."),
    ("en", lambda c: f"{c.rma} received at the {c.city} warehouse, {c.qty} inspected."),
    ("de", lambda c: f"Status {c.de}: {c.pick} – {c.qty} {c.prod} kommissioniert."),
    ("de", lambda c: f"Wareneingang {c.whin} zu {c.po} ist zu {c.pct} % gebucht."),
    ("de", lambda c: f"Charge {c.lot} am {c.de} um {c.time} Uhr freigegeben."),
    ("de", lambda c: f"Die Lieferung {c.pick} verlässt {c.city} am {c.wd} gegen {c.time} Uhr."),
    ("fr", lambda c: f"Statut au {c.fr} : {c.pick}, {c.qty} préparés."),
    ("fr", lambda c: f"La réception {c.whin} ({c.po}) est à {c.pct} %."),
    ("fr", lambda c: f"Le lot {c.lot} est libéré depuis le {c.fr}."),
    ("nl", lambda c: f"Status {c.nl}: {c.pick} – {c.qty} verzameld."),
    ("nl", lambda c: f"Ontvangst {c.whin} voor {c.po} is voor {c.pct}% binnen."),
    ("nl", lambda c: f"Order {c.so} vertrekt {c.wd} om {c.time} uit {c.city}."),
    ("es", lambda c: f"El envío {c.pick} sale de {c.city} el {c.wd} a las {c.time}."),
    ("it", lambda c: f"La spedizione {c.pick} parte da {c.city} {c.wd} alle {c.time}."),
]
for k in range(38):
    lang, t = T_NEG[k % len(T_NEG)]
    add("neg", lang, t(Ctx(lang)))


# ============================================================================================
# self-check
# ============================================================================================
def fail(msg):
    print("SELF-CHECK FAILED:", msg, file=sys.stderr)
    sys.exit(1)


FREE_NAMES = set()
for ps in list(PEOPLE.values()) + [DRIVERS]:
    for f, l, _ in ps:
        FREE_NAMES.add(f)
        FREE_NAMES.add(l[0].upper() + l[1:])
        FREE_NAMES.add(l)

KNOWN_BY_CANON = {kp.canonical: kp for kp in KNOWN_PEOPLE}
KNOWN_ORG_FORMS = {canon: forms for canon, _, forms in KNOWN_ORGS}
LEGAL = r"(?:GmbH|KG|Inc\.?|B\.V\.|BV|SARL|SAS|S\.r\.l\.|SRL|S\.L\.|SL)$"

RX_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
RX_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,}")
RX_IP4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
RX_IP6_CAND = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?:\.\d{1,3}){0,3}")
RX_CUR_SYM = re.compile(r"[€$£]")
RX_CUR_CODE = re.compile(r"(?:\b(?:EUR|USD|GBP|CHF)\s?\d)|(?:\d\s?(?:EUR|USD|GBP|CHF)\b)")
RX_CARDLIKE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")

ids = set()
entity_counts = Counter()
for it in ITEMS:
    if it["id"] in ids:
        fail(f"duplicate id {it['id']}")
    ids.add(it["id"])
    text, spans = it["text"], it["spans"]
    spans.sort(key=lambda s: (s["start"], s["end"]))
    prev_end = -1
    for s in spans:
        v = text[s["start"]:s["end"]]
        if v != s["_value"]:
            fail(f"{it['id']}: span text {v!r} != {s['_value']!r}")
        if not v or v != v.strip():
            fail(f"{it['id']}: empty or whitespace-padded span {v!r}")
        if v[-1] in ",;:" or (v[-1] == "." and s["entity"] != "ORG_KNOWN"):
            fail(f"{it['id']}: span ends with punctuation {v!r}")
        if s["start"] < prev_end:
            fail(f"{it['id']}: overlapping spans")
        prev_end = s["end"]
        e = s["entity"]
        entity_counts[e] += 1
        if e == "IBAN" and not iban_ok(v):
            fail(f"{it['id']}: IBAN {v} fails mod-97")
        if e == "CREDIT_CARD":
            if not luhn_ok(v) or not re.fullmatch(r"[\d -]+", v) or v.replace(" ", "").replace("-", "")[0] not in "345":
                fail(f"{it['id']}: card {v} fails Luhn/prefix")
            n = len(digits(v))
            if n not in (15, 16):
                fail(f"{it['id']}: card {v} has {n} digits")
        if e == "VAT_ID" and not vat_ok(v):
            fail(f"{it['id']}: VAT id {v} invalid")
        if e == "EMAIL" and not RX_EMAIL.fullmatch(v):
            fail(f"{it['id']}: bad e-mail {v}")
        if e == "IP_ADDRESS":
            try:
                ipaddress.ip_address(v)
            except ValueError:
                fail(f"{it['id']}: bad IP {v}")
        if e == "PHONE" and not re.fullmatch(r"[+(\d][\d ()./-]*\d", v):
            fail(f"{it['id']}: bad phone span {v!r}")
        if e == "MONEY" and not re.search(r"\d", v):
            fail(f"{it['id']}: bad money span {v!r}")
        if e == "PERSON":
            for kn in it["known"]:
                kp = KNOWN_BY_CANON.get(kn)
                if kp and v in kp.variants():
                    fail(f"{it['id']}: PERSON {v!r} is a known-name variant")
        if e == "PERSON_KNOWN":
            kps = [KNOWN_BY_CANON[k] for k in it["known"] if k in KNOWN_BY_CANON]
            ok = False
            for kp in kps:
                forms = kp.variants() | {f"{kp.last}, {kp.first}", f"{kp.first[0]}. {kp.last}"}
                if v in forms or v.lower() in {f.lower() for f in forms}:
                    ok = True
            if not ok:
                fail(f"{it['id']}: PERSON_KNOWN {v!r} does not match any known person {it['known']}")
        if e == "ORG_KNOWN":
            cores = [re.sub(r",?\s*" + LEGAL, "", k).lower() for k in it["known"] if k in KNOWN_ORG_FORMS]
            vl = v.lower().replace("ae", "ä").replace("oe", "ö").replace("lumiere", "lumière")
            if not any(vl.startswith(core) for core in cores):
                fail(f"{it['id']}: ORG_KNOWN {v!r} does not match known orgs {it['known']}")

    has_known_span = any(s["entity"] in ("PERSON_KNOWN", "ORG_KNOWN") for s in spans)
    if it["known"] and not has_known_span:
        fail(f"{it['id']}: known is non-empty but no *_KNOWN span")
    if has_known_span and not it["known"]:
        fail(f"{it['id']}: *_KNOWN span without known values")

    # --- leak checks on the unlabeled remainder --------------------------------------------
    masked = list(text)
    for s in spans:
        for i in range(s["start"], s["end"]):
            masked[i] = "\x00"
    rest = "".join(masked)
    for m in RX_IP6_CAND.finditer(rest):
        try:
            ipaddress.IPv6Address(m.group(0))
            fail(f"{it['id']}: unlabeled IPv6 {m.group(0)!r} in {text!r}")
        except ValueError:
            pass
    for rx, what in [(RX_EMAIL, "e-mail"), (RX_IBAN, "IBAN"), (RX_IP4, "IPv4"),
                     (RX_CUR_SYM, "currency symbol")]:
        m = rx.search(rest)
        if m:
            fail(f"{it['id']}: unlabeled {what} {m.group(0)!r} in {text!r}")
    if "currency" not in it["_exempt"]:
        m = RX_CUR_CODE.search(rest)
        if m:
            fail(f"{it['id']}: unlabeled amount {m.group(0)!r} in {text!r}")
    for m in RX_CARDLIKE.finditer(rest):
        if luhn_ok(m.group(0)) and len(digits(m.group(0))) >= 15:
            fail(f"{it['id']}: unlabeled Luhn-valid number {m.group(0)!r}")
    for name in FREE_NAMES:
        if re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", rest):
            fail(f"{it['id']}: unlabeled free-text name {name!r} in {text!r}")
    for kn in it["known"]:
        if kn in KNOWN_BY_CANON:
            for form in KNOWN_BY_CANON[kn].variants():
                if re.search(r"(?<!\w)" + re.escape(form) + r"(?!\w)", rest, re.I):
                    fail(f"{it['id']}: unlabeled known-name variant {form!r} in {text!r}")
        if kn in KNOWN_ORG_FORMS:
            core = re.sub(r",?\s*" + LEGAL, "", kn)
            for form in {kn, core, *KNOWN_ORG_FORMS[kn]}:
                if re.search(re.escape(form), rest, re.I):
                    fail(f"{it['id']}: unlabeled known org {form!r} in {text!r}")

negatives = [it for it in ITEMS if not it["spans"]]
for it in negatives:
    if it["_cat"] != "neg":
        fail(f"{it['id']}: positive template produced no span")
for it in ITEMS:
    if it["_cat"] == "neg" and it["spans"]:
        fail(f"{it['id']}: negative item has spans")

problems = []
for e, n in MINIMUM.items():
    if entity_counts[e] < n:
        problems.append(f"{e}: {entity_counts[e]} < {n}")
if len(negatives) < MIN_NEGATIVES:
    problems.append(f"negatives: {len(negatives)} < {MIN_NEGATIVES}")
if len(ITEMS) < MIN_ITEMS:
    problems.append(f"items: {len(ITEMS)} < {MIN_ITEMS}")
if problems:
    fail("coverage below target: " + "; ".join(problems))

# ============================================================================================
# write
# ============================================================================================
with OUT.open("w", encoding="utf-8") as fh:
    for it in ITEMS:
        rec = {
            "id": it["id"], "lang": it["lang"], "text": it["text"], "known": it["known"],
            "spans": [{"start": s["start"], "end": s["end"], "entity": s["entity"]}
                      for s in it["spans"]],
        }
        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")

# re-read and verify what was written
with OUT.open(encoding="utf-8") as fh:
    for line in fh:
        rec = json.loads(line)
        for s in rec["spans"]:
            assert 0 <= s["start"] < s["end"] <= len(rec["text"])

print(f"wrote {len(ITEMS)} items to {OUT}")
print(f"  positive items: {len(ITEMS) - len(negatives)}   negative items (spans == []): {len(negatives)}")
print("  spans per entity:")
for e in ENTITIES:
    print(f"    {e:<15} {entity_counts[e]:>4}   (min {MINIMUM[e]})")
print(f"    {'total':<15} {sum(entity_counts.values()):>4}")
print("  items per language: " + ", ".join(f"{k}={v}" for k, v in sorted(Counter(i['lang'] for i in ITEMS).items())))
print("  items per id prefix: " + ", ".join(f"{k}={v}" for k, v in sorted(Counter(i['_cat'] for i in ITEMS).items())))
print(f"  items with known values: {sum(1 for i in ITEMS if i['known'])}")
print("self-check passed: span texts, no overlaps, IBAN mod-97, card Luhn, VAT formats/check digits, leak checks")
