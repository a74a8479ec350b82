#!/usr/bin/env python3
"""Build the HELD-OUT labeled redaction corpus (heldout.jsonl).

Written independently of build.py / corpus.jsonl: new names, companies,
streets, numbers and phrasing, so the engine can be evaluated on data it
was not tuned on.

Items are written with inline markup ``[[CODE:surface text]]``; the markup
is stripped and the spans are computed from it, so offsets are exact by
construction.  Codes:

    E=EMAIL  PH=PHONE  IB=IBAN  CC=CREDIT_CARD  VAT=VAT_ID  IP=IP_ADDRESS
    M=MONEY  EID=EMPLOYEE_ID  ADR=POSTAL_ADDRESS  PK=PERSON_KNOWN
    OK=ORG_KNOWN  P=PERSON

IBANs, card numbers and VAT IDs are *computed* (mod-97, Luhn, national VAT
checksums) rather than typed, and every value is re-validated before the
file is written.  Run:  python3 heldout_build.py  (writes heldout.jsonl
next to this script and prints per-entity counts).
"""
import ipaddress
import json
import os
import random
import re
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "heldout.jsonl")

CODES = {
    "E": "EMAIL", "PH": "PHONE", "IB": "IBAN", "CC": "CREDIT_CARD",
    "VAT": "VAT_ID", "IP": "IP_ADDRESS", "M": "MONEY", "EID": "EMPLOYEE_ID",
    "ADR": "POSTAL_ADDRESS", "PK": "PERSON_KNOWN", "OK": "ORG_KNOWN",
    "P": "PERSON",
}
ENTITIES = sorted(set(CODES.values()))

# --------------------------------------------------------------------------
# Check-digit helpers (used both to generate and to validate)
# --------------------------------------------------------------------------


def _iban_num(s):
    return int("".join(str(int(ch, 36)) for ch in s))


def group(s, sizes, sep=" "):
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    assert i == len(s), (s, sizes)
    return sep.join(out)


def group4(s, sep=" "):
    return sep.join(s[i:i + 4] for i in range(0, len(s), 4))


IBAN_LEN = {"GB": 22, "NL": 18, "DE": 22, "AT": 20, "CH": 21, "FR": 27,
            "BE": 16, "ES": 24, "IT": 27, "PL": 28, "LU": 20}


def make_iban(cc, bban, grouped=True):
    check = 98 - _iban_num(bban + cc + "00") % 97
    raw = f"{cc}{check:02d}{bban}"
    assert len(raw) == IBAN_LEN[cc], raw
    return group4(raw) if grouped else raw


def iban_valid(s):
    s = s.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", s):
        return False
    if IBAN_LEN.get(s[:2]) != len(s):
        return False
    return _iban_num(s[4:] + s[:4]) % 97 == 1


def nl_account(prefix9):
    """10-digit Dutch bank account passing the old 11-proof."""
    s = sum(int(d) * w for d, w in zip(prefix9, range(10, 1, -1)))
    last = (-s) % 11
    assert last < 10, prefix9
    return prefix9 + str(last)


def fr_bban(bank, branch, account):
    key = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97)
    return f"{bank}{branch}{account}{key:02d}"


def be_bban(bank3, acct7):
    first = bank3 + acct7
    chk = int(first) % 97 or 97
    return f"{first}{chk:02d}"


_ES_W = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]


def _es_dc(ten):
    c = 11 - sum(int(d) * w for d, w in zip(ten, _ES_W)) % 11
    return {11: 0, 10: 1}.get(c, c)


def es_bban(bank, branch, account):
    dc = f"{_es_dc('00' + bank + branch)}{_es_dc(account)}"
    return bank + branch + dc + account


_IT_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12,
           14, 16, 10, 22, 25, 24, 23]


def it_bban(abi, cab, conto):
    s = abi + cab + conto
    tot = 0
    for i, ch in enumerate(s):
        v = int(ch) if ch.isdigit() else ord(ch) - 65
        tot += _IT_ODD[v] if i % 2 == 0 else v
    return chr(65 + tot % 26) + s


def luhn_valid(num):
    d = [int(c) for c in num if c.isdigit()]
    tot = 0
    for i, x in enumerate(reversed(d)):
        if i % 2 == 1:
            x *= 2
            if x > 9:
                x -= 9
        tot += x
    return tot % 10 == 0


def luhn_complete(partial):
    for c in "0123456789":
        if luhn_valid(partial + c):
            return partial + c
    raise AssertionError(partial)


# ---- VAT ------------------------------------------------------------------

def de_vat_ok(d9):
    product = 10
    for ch in d9[:8]:
        s = (int(ch) + product) % 10 or 10
        product = (2 * s) % 11
    c = 11 - product
    return int(d9[8]) == (0 if c == 10 else c)


def de_vat(d8):
    for c in "0123456789":
        if de_vat_ok(d8 + c):
            return "DE" + d8 + c
    raise AssertionError(d8)


def at_vat_ok(d8):  # digits after 'ATU'
    s = 0
    for i, ch in enumerate(d8[:7]):
        x = int(ch)
        if i % 2 == 1:
            x *= 2
            x = x // 10 + x % 10
        s += x
    return int(d8[7]) == (6 - s) % 10


def at_vat(d7):
    for c in "0123456789":
        if at_vat_ok(d7 + c):
            return "ATU" + d7 + c
    raise AssertionError(d7)


def nl_vat_ok(d9):
    return (sum(int(d) * (9 - i) for i, d in enumerate(d9[:8])) - int(d9[8])) % 11 == 0


def nl_vat(d8, suffix="B01"):
    c = sum(int(d) * (9 - i) for i, d in enumerate(d8)) % 11
    assert c < 10, d8
    return f"NL{d8}{c}{suffix}"


def be_vat_ok(d10):
    return d10[0] in "01" and (int(d10[:8]) + int(d10[8:])) % 97 == 0


def be_vat(d8):
    return d8 + f"{97 - int(d8) % 97:02d}"


def fr_vat_ok(key2, siren):
    return luhn_valid(siren) and int(key2) == int(siren + "12") % 97


def fr_vat(d8):
    siren = luhn_complete(d8)
    key = int(siren + "12") % 97
    return f"{key:02d}", siren


def it_vat_ok(d11):
    office = int(d11[7:10])
    return luhn_valid(d11) and (1 <= office <= 100 or office in (120, 121, 888, 999))


def it_vat(d7, office3):
    return luhn_complete(d7 + office3)


def es_cif_ok(s):  # 'B' + 7 digits + digit
    return s[0] in "ABCDEFGHJUV" and luhn_valid(s[1:9])


def es_vat(letter, d7):
    return "ES" + letter + luhn_complete(d7)


_PL_W = (6, 5, 7, 2, 3, 4, 5, 6, 7)


def pl_vat_ok(d10):
    return sum(int(d) * w for d, w in zip(d10, _PL_W)) % 11 == int(d10[9])


def pl_vat(d9):
    c = sum(int(d) * w for d, w in zip(d9, _PL_W)) % 11
    assert c < 10, d9
    return "PL" + d9 + str(c)


def se_vat(d9):
    return "SE" + luhn_complete(d9) + "01"


def vat_valid(v):
    s = re.sub(r"[ .\-]", "", v).upper()
    cc, rest = s[:2], s[2:]
    if cc == "DE":
        return bool(re.fullmatch(r"[1-9]\d{8}", rest)) and de_vat_ok(rest)
    if cc == "AT":
        return bool(re.fullmatch(r"U\d{8}", rest)) and at_vat_ok(rest[1:])
    if cc == "NL":
        return bool(re.fullmatch(r"\d{9}B\d{2}", rest)) and nl_vat_ok(rest[:9])
    if cc == "BE":
        return bool(re.fullmatch(r"[01]\d{9}", rest)) and be_vat_ok(rest)
    if cc == "FR":
        return bool(re.fullmatch(r"\d{11}", rest)) and fr_vat_ok(rest[:2], rest[2:])
    if cc == "IT":
        return bool(re.fullmatch(r"\d{11}", rest)) and it_vat_ok(rest)
    if cc == "ES":
        return bool(re.fullmatch(r"[A-Z]\d{8}", rest)) and es_cif_ok(rest)
    if cc == "PL":
        return bool(re.fullmatch(r"\d{10}", rest)) and pl_vat_ok(rest)
    if cc == "SE":
        return bool(re.fullmatch(r"\d{10}01", rest)) and luhn_valid(rest[:10])
    return False


# --------------------------------------------------------------------------
# Generated identifiers
# --------------------------------------------------------------------------

IB_GB1 = make_iban("GB", "MIDL" + "402715" + "41873920")
IB_NL1 = make_iban("NL", "RABO" + nl_account("030418725"))
IB_NL2 = make_iban("NL", "ABNA" + nl_account("051733921"))
IB_DE1 = make_iban("DE", "76050101" + "0027348815")
IB_DE2_COMPACT = make_iban("DE", "12030000" + "1020394857", grouped=False)
IB_AT1 = make_iban("AT", "20111" + "82917365400")
IB_CH1 = make_iban("CH", "00235" + "118045720913")
IB_FR1 = make_iban("FR", fr_bban("30004", "01823", "00047261938"))
IB_BE1 = make_iban("BE", be_bban("735", "0075470"))
IB_BE2_COMPACT = make_iban("BE", be_bban("063", "4127790"), grouped=False)
IB_ES1 = make_iban("ES", es_bban("2100", "0418", "0200051332"))
IB_ES2_COMPACT = make_iban("ES", es_bban("0182", "5322", "0201503847"), grouped=False)
IB_IT1 = make_iban("IT", it_bban("05034", "11701", "000000218455"))
IB_IT2_COMPACT = make_iban("IT", it_bban("03069", "09460", "000004718224"), grouped=False)
IB_LU1 = make_iban("LU", "019" + "4006447500000")


def _broken_iban():
    good = make_iban("DE", "50020400" + "0718263544", grouped=False)
    bad = good[:2] + f"{(int(good[2:4]) + 7) % 100:02d}" + good[4:]
    assert not iban_valid(bad)
    return group4(bad)


IB_BAD = _broken_iban()  # deliberately INVALID: appears only in a negative

CC_VISA1 = group4(luhn_complete("453201784519203"))
CC_AMEX1 = group(luhn_complete("37414926810537"), [4, 6, 5])
CC_MC1_DASH = group4(luhn_complete("542518730064219"), "-")
CC_DISC1 = group4(luhn_complete("601149270318855"))
CC_MC2 = group4(luhn_complete("512873004418206"))
CC_VISA2_COMPACT = luhn_complete("491762035518442")
CC_VISA3 = group4(luhn_complete("497310284467125"))
CC_MC3 = group4(luhn_complete("557039128804731"))
CC_VISA4 = group4(luhn_complete("454768390211578"))
CC_JCB1 = group4(luhn_complete("353011427790263"))
CC_MC2SERIES = group4(luhn_complete("222300918475016"))
CC_DINERS = group(luhn_complete("3056930917720"), [4, 6, 4])
CC_AMEX2 = group(luhn_complete("34882710395640"), [4, 6, 5])
CC_VISA5_DASH = group4(luhn_complete("402400716639518"), "-")

VAT_NL1 = nl_vat("81347261", "B01")
VAT_NL2 = nl_vat("86215094", "B02")
_be1 = be_vat("06418273")
VAT_BE1_DOTS = f"BE {_be1[:4]}.{_be1[4:7]}.{_be1[7:]}"
VAT_BE2 = "BE" + be_vat("04719305")
_be3 = be_vat("07736102")
VAT_BE3_SPACED = f"BE {_be3[:4]} {_be3[4:7]} {_be3[7:]}"
VAT_DE1 = de_vat("28174439")
_de2 = de_vat("13672905")
VAT_DE2_SPACED = f"DE {_de2[2:5]} {_de2[5:8]} {_de2[8:]}"
VAT_DE3 = de_vat("81540277")
VAT_AT1 = at_vat("6293018")
_fr1 = fr_vat("73282094")
VAT_FR1_SPACED = f"FR {_fr1[0]} {_fr1[1][:3]} {_fr1[1][3:6]} {_fr1[1][6:]}"
_fr2 = fr_vat("41950627")
VAT_FR2 = f"FR{_fr2[0]}{_fr2[1]}"
VAT_IT1 = "IT" + it_vat("0482917", "021")
VAT_IT2_SPACED = "IT " + it_vat("0917364", "058")
VAT_ES1 = es_vat("B", "8271934")
VAT_ES2 = es_vat("A", "2860417")
VAT_PL1 = pl_vat("527104839")
VAT_SE1 = se_vat("556812430")

# --------------------------------------------------------------------------
# Items: (lang, marked-up text, known names)
# --------------------------------------------------------------------------

ITEMS = [
    # ============================== ENGLISH ==============================
    ("en", "Please call [[PK:Marcus Oyelaran]] on [[PH:+44 20 7946 0321]] before 10am, he needs to approve the split delivery for WH/OUT/04412.",
     ["Marcus Oyelaran", "Kestrel Marine Supplies Ltd"]),
    ("en", "Refund of [[M:$1,284.60]] was approved by [[P:Dana Whitcombe]] and will go back to the original payment method within 5 business days.",
     ["Greenfield Bakery Co."]),
    ("en", "Customer reports that the pallet for INV/2026/00412 arrived with two crushed cartons. Contact on site: [[P:Priya Raghunathan]], [[PH:(415) 555-0172]], [[E:priya.r@northgate.example]].",
     []),
    ("en", "Dear Mr. [[PK:Okonkwo-Baptiste]], thank you for order S02215 — the remaining 40 units leave our Leeds warehouse on Friday.",
     ["Felix Okonkwo-Baptiste", "Saltmarsh Provisions Ltd"]),
    ("en", f"For the deposit please wire to IBAN [[IB:{IB_GB1}]] and quote P00981 as the reference.",
     ["Ashdown Timber Ltd"]),
    ("en", "[[OK:Ashdown Timber]] confirmed they'll collect the 14 crates from dock 3 on Thursday afternoon.",
     ["Ashdown Timber Ltd"]),
    ("en", "The failed portal logins came from [[IP:203.0.113.87]] and [[IP:198.51.100.203]] between 02:10 and 02:25 UTC; both are now blocked.",
     []),
    ("en", "Please add driver badge [[EID:DRV-40317]] to the gate list at the Reno cross-dock for next week.",
     []),
    ("en", "As agreed on the phone, unit price [[M:14.20]] applies to all 600 pcs of HX-2201-BLK on order S03018.",
     ["Greenfield Bakery Co."]),
    ("en", f"The card [[CC:{CC_VISA1}]] (exp 09/28) was declined twice; please ask the customer for another payment method.",
     []),
    ("en", "Ship to: [[P:Eleanor Vance-Whitley]], [[ADR:88 Larkspur Lane, Bristol BS8 4QJ]] — leave with the neighbour if nobody answers.",
     []),
    ("en", f"Our Dutch subsidiary's VAT number is [[VAT:{VAT_NL1}]], please update the vendor record before the next bill is posted.",
     []),
    ("en", "Contact on file: [[PK:O'Sullivan, Niamh]] (purchasing). Please send the credit note to her directly.",
     ["Niamh O'Sullivan", "Brackenridge Hotels plc"]),
    ("en", "Could you ask [[P:J. R. Castellanos]] in accounts about the [[M:€2,310.00]] difference on INV/2026/00158?",
     []),
    ("en", "[[PK:MEERA KAPOOR]] rang again about the backorder; she wants a callback on [[PH:+1 646 555 0139]] today.",
     ["Meera Kapoor"]),
    ("en", "Employee ID [[EID:E-558203]] has been granted access to the returns module as of Monday.",
     []),
    ("en", "Remittance received: [[M:£12,480.00]] from [[OK:Kestrel Marine Supplies]] for INV/2026/00233.",
     ["Kestrel Marine Supplies Ltd", "Marcus Oyelaran"]),
    ("en", "The forklift operator ([[P:Ruth Abernathy]], staff no. [[EID:4471-WH]]) reported the rack damage at 07:45.",
     []),
    ("en", "The customer's new billing address is [[ADR:1550 Cedar Crest Blvd, Allentown, PA 18104]]; the shipping address stays the same.",
     ["Lehigh Valley Crafts Inc."]),
    ("en", f"Prepayment was made with card [[CC:{CC_AMEX1}]], authorisation code 0Y7K2Q.",
     []),
    ("en", "Admin panel access from [[IP:2001:db8:4f2a::17]] was rejected by the firewall at 23:58.",
     []),
    ("en", "Could you forward the packing list to [[E:r.castellanos@amberline-foods.example]] and cc [[E:dispatch@amberline-foods.example]]?",
     ["Amberline Foods Ltd"]),
    ("en", "From: [[PK:Hannah Lindqvist]] <[[E:hannah.lindqvist@polarfreight.example]]>\nSubject: Pallet exchange for S04410",
     ["Hannah Lindqvist", "Polar Freight AB"]),
    ("en", "Our sales rep [[P:Gideon Achterberg]] will visit [[OK:Polar Freight]] next week to discuss the annual volume of 1,200 pallets.",
     ["Polar Freight AB", "Hannah Lindqvist"]),
    ("en", "INV/2026/00310 totals [[M:$ 9,870.25]]; the customer only disputes the freight line of [[M:$312.00]].",
     []),
    ("en", f"Please debit [[IB:{IB_NL1}]] for the monthly storage fee from June onwards.",
     ["Tulip Row Imports Ltd"]),
    ("en", "[[OK:Brightwater Home & Garden]] asked us to consolidate S04102 and S04107 into one shipment.",
     ["Brightwater Home & Garden LLC"]),
    ("en", "POD attached — signed for by [[P:M. Delacroix-Ford]] at 14:12.",
     []),
    ("en", f"Belgian customer VAT: [[VAT:{VAT_BE1_DOTS}]] — the reverse-charge note must be printed on the invoice.",
     []),
    ("en", "The account manager for this customer is [[P:Lucía Ferreira-Nunes]]; escalate to her if the [[M:USD 18,000]] credit limit is exceeded.",
     []),
    ("en", "VPN session for the night shift supervisor opened from [[IP:192.0.2.146]] at 21:04.",
     []),
    ("en", f"The supplier's Polish VAT ID [[VAT:{VAT_PL1}]] is missing on their last three invoices.",
     []),
    ("en", "Best regards,\n[[P:Colm Fitzgerald]]\nCustomer Service | Ridgeway Distribution\nT [[PH:+353 1 907 4412]] | [[E:c.fitzgerald@ridgeway.example]]",
     []),
    ("en", "Per [[PK:Dmitri Volkonsky]], the pallets can be stacked two high, max. 1,000 kg per pallet.",
     ["Dmitri Volkonsky", "Volga Fine Foods Ltd"]),
    ("en", "Please send the replacement parts to [[ADR:4 Quayside Mews, Newcastle upon Tyne NE1 3DX]] rather than to head office.",
     []),
    ("en", f"Card on file [[CC:{CC_MC1_DASH}]] was charged [[M:$2,045.90]] for S05120.",
     []),
    ("en", "Deposit of [[M:1,500.00 USD]] received; the remaining balance is due on delivery.",
     []),
    ("en", "Timesheet correction for employee no. [[EID:30917]]: clock-out on 12 March should read 18:30, not 16:30.",
     []),
    ("en", "[[PK:van Houten, Pieter]] from [[OK:Lowlands Produce]] asked whether we can receive on Saturdays.",
     ["Pieter van Houten", "Lowlands Produce Ltd"]),
    ("en", "Our new warehouse lead, [[P:Abigail Thornbury-Quist]], starts on 2 June; her badge is [[EID:WH-0912]].",
     []),
    ("en", "The API client at [[IP:10.14.2.31]] kept retrying the label request for WH/OUT/05533.",
     []),
    ("en", f"Swedish customer: VAT [[VAT:{VAT_SE1}]], invoice in SEK please.",
     []),
    ("en", "Mrs. [[PK:Adaeze Nwosu]] called: the delivery to [[ADR:17 Hollybush Road, Reading RG1 7TP]] must arrive before noon.",
     ["Adaeze Nwosu"]),
    ("en", f"The customer paid by Discover card [[CC:{CC_DISC1}]] — receipt sent to [[E:billing@saltmarsh.example]].",
     ["Saltmarsh Provisions Ltd"]),
    ("en", "[[OK:SALTMARSH PROVISIONS]] has 3 open orders: S05201, S05207 and S05219.",
     ["Saltmarsh Provisions Ltd"]),
    ("en", f"The customer read the card number [[CC:{CC_MC2SERIES}]] out over the phone — please don't store it in the chatter.",
     []),
    ("en", f"Payments from the Luxembourg branch will come from [[IB:{IB_LU1}]].",
     []),
    ("en", "Escalation: Dr. [[PK:Rosalind Achebe-Carter]] wants the damaged batch collected by Tuesday.",
     ["Rosalind Achebe-Carter"]),

    # --------------------------- English negatives ---------------------------
    ("en", "Order S00042 has been picked and is waiting at dock 2 for the 15:30 pickup.", []),
    ("en", "WH/OUT/00123 left on 2026-03-14 with 3 pallets, total weight 1,240 kg.", ["Kestrel Marine Supplies Ltd"]),
    ("en", "Please check lot LOT-24-11873 for the humidity issue; the affected SKUs are CB-1140-GRY and CB-1140-NVY.", []),
    ("en", "Tracking number 1Z4F8V270391824417 was handed to the carrier at 16:05.", []),
    ("en", "The Boston warehouse will be closed on Monday, May 25 for Memorial Day.", []),
    ("en", "INV/2026/00077 was validated this morning; payment terms are 30 days net.", ["Polar Freight AB"]),
    ("en", "Receipt P00318 contains 48 boxes of A4 copy paper, 500 sheets each.", []),
    ("en", "Firmware 4.12.3 on the handheld scanners fixes the barcode timeout.", []),
    ("en", "Next cycle count: Thursday 09:00–11:30, aisles 12 to 18, bins B-12-03 through B-18-44.", []),
    ("en", "Container MSKU 483920 7 is expected at Felixstowe on 21/04/2026.", []),
    ("en", "The customer asked if the Oslo Oak Sideboard is available in a walnut finish.", ["Meera Kapoor"]),
    ("en", "Please print 250 labels for SKU TR-88-0045, size 100 x 150 mm.", []),
    ("en", "The payment terminal shows the charge on the card ending in 4821, so no further action is needed.", []),
    ("en", "Reefer unit 7 temperature log: 2.4 °C at 06:00, 3.1 °C at 12:00, 2.8 °C at 18:00.", []),
    ("en", "The shipment is 2 x 20ft containers, 18.5 t gross, 42 m³.", []),
    ("en", "Delivery window changed from 8:00-12:00 to 13:00-17:00 on 3 June.", ["Adaeze Nwosu"]),
    ("en", "Batch 20260412-B contains 1,500 pcs; best before 12.10.2027.", []),
    ("en", "Please use EUR-1 pallets (1200 x 800 mm) for the Lyon shipment.", []),
    ("en", "Invoice INV/2025/01944 was cancelled and replaced by INV/2026/00012.", []),
    ("en", f"The IBAN on the supplier form ({IB_BAD}) fails the checksum, so please ask them to send it again.", []),
    ("en", "Purchase P00455 was received in full: 20 rolls of stretch film, 23 µm, 500 m each.", []),
    ("en", "Appointment booked for 04/14/2026 at 8:30 AM, door 12.", []),
    ("en", "Label generated 2026-04-14T08:31:07Z for WH/OUT/05601.", []),
    ("en", "SKU LMP-300-WHT is the Nordic Glow floor lamp, not the desk version.", []),

    # ============================== GERMAN ===============================
    ("de", "Sehr geehrte Frau [[PK:Brandstätter]], anbei die Auftragsbestätigung zu S02871.",
     ["Ingrid Brandstätter", "Alpenholz Handels GmbH"]),
    ("de", f"Bitte überweisen Sie [[M:1.249,90 €]] auf unser Konto [[IB:{IB_DE1}]].",
     []),
    ("de", "Rückruf erbeten: [[P:Jörg Pfannenschmidt]], Tel. [[PH:0711 / 48 29 36]], wegen der Reklamation zu WH/OUT/01933.",
     []),
    ("de", "Lieferadresse ab sofort: [[ADR:Lindenstraße 42a, 04177 Leipzig]] (Hintereingang, Rampe 2).",
     []),
    ("de", f"Die USt-IdNr. des Kunden lautet [[VAT:{VAT_DE1}]], bitte im Kundenstamm ergänzen.",
     ["Rheinpack Verpackungen GmbH"]),
    ("de", "Herr [[PK:Klaus Müller-Lüdenscheidt]] hat die Gutschrift für INV/2026/00201 freigegeben.",
     ["Klaus Mueller-Luedenscheidt", "Rheinpack Verpackungen GmbH"]),
    ("de", "Personalnummer [[EID:004718]]: Zugang zum Lagerverwaltungssystem bitte zum 31.03.2026 sperren.",
     []),
    ("de", "Stückpreis [[M:3,85]] netto, Mindestabnahme 2.000 Stück, Lieferung frei Haus.",
     []),
    ("de", "Anmeldung am Kundenportal über [[IP:192.0.2.211]] – bitte prüfen, ob das unser VPN-Gateway ist.",
     []),
    ("de", f"Kreditkarte [[CC:{CC_MC2}]], gültig bis 11/27, Karteninhaberin [[P:Sabine Rotermund]].",
     []),
    ("de", "Ansprechpartnerin vor Ort ist Dr. [[P:Friederike von Hallwyl]] aus der Qualitätssicherung.",
     []),
    ("de", "Bitte an [[E:einkauf@alpenholz-handel.example]] schicken, nicht an Frau [[PK:Brandstätter]] persönlich.",
     ["Ingrid Brandstätter", "Alpenholz Handels GmbH"]),
    ("de", "Mobil erreichen Sie mich unter [[PH:+49 (0) 172 5839 204]]. Gruß, [[P:Timo Haußmann]]",
     []),
    ("de", "Unser Fahrer [[P:Mehmet Yıldırım]] steht auf der A7 im Stau, Ankunft ca. 14:45 statt 13:00.",
     []),
    ("de", "Bitte die Rechnung an [[OK:Weserlicht Logistik GmbH]], [[ADR:Am Speicher 7, 28217 Bremen]] adressieren.",
     ["Weserlicht Logistik GmbH"]),
    ("de", "Die Anzahlung von [[M:12.400,50 EUR]] ist am 02.04.2026 eingegangen.",
     []),
    ("de", "[[PK:Schäfer, Ulrike]] (Buchhaltung) bittet um Kopien der Lieferscheine WH/OUT/01120 bis WH/OUT/01124.",
     ["Ulrike Schaefer"]),
    ("de", f"Österreichischer Kunde, UID-Nummer [[VAT:{VAT_AT1}]], Lieferung innergemeinschaftlich steuerfrei.",
     []),
    ("de", "Sehr geehrter Herr [[P:van Dijk]], die Ware ist versandbereit.",
     []),
    ("de", f"IBAN: [[IB:{IB_AT1}]] – Kontoinhaber: [[OK:Donautal Agrar GmbH]]",
     ["Donautal Agrar GmbH"]),
    ("de", "Preis pro Einheit [[M:CHF 2'340.50]] zzgl. MwSt., Lieferung ab Lager Basel.",
     []),
    ("de", "Die Lieferung an [[ADR:Hauptstr. 118, 67433 Neustadt an der Weinstraße]] ist für KW 16 eingeplant.",
     []),
    ("de", "Kollege [[P:Lars-Henrik Øster]] übernimmt ab Montag die Tour Nord.",
     []),
    ("de", "Bitte Rückruf an [[PK:Ingrid Brandstaetter]] unter [[PH:+43 1 904 22 17]].",
     ["Ingrid Brandstätter", "Alpenholz Handels GmbH"]),
    ("de", "Server-Log: fehlgeschlagene Anmeldung von [[IP:198.51.100.64]] um 03:12 Uhr, Benutzer lager02.",
     []),
    ("de", f"Die Zahlung mit Karte [[CC:{CC_VISA2_COMPACT}]] wurde von der Bank abgelehnt.",
     []),
    ("de", "Antwort bitte an [[E:k.mueller-luedenscheidt@rheinpack.example]] – Herr [[PK:Mueller-Luedenscheidt]] ist bis Freitag im Urlaub.",
     ["Klaus Mueller-Luedenscheidt"]),
    ("de", "Der Mitarbeiterausweis (Badge-Nr. [[EID:B-7731]]) wurde nicht zurückgegeben.",
     []),
    ("de", f"Unsere USt-ID lautet [[VAT:{VAT_DE2_SPACED}]], bitte auf allen Rechnungen angeben.",
     []),
    ("de", f"Bankverbindung der [[OK:Rheinpack Verpackungen]]: [[IB:{IB_DE2_COMPACT}]]",
     ["Rheinpack Verpackungen GmbH"]),
    ("de", "Rechnungsanschrift: [[OK:Alpenholz Handels GmbH]], z. Hd. [[PK:Ingrid Brandstätter]], [[ADR:Gewerbepark Süd 12, 83022 Rosenheim]]",
     ["Ingrid Brandstätter", "Alpenholz Handels GmbH"]),
    ("de", f"Schweizer Konto für Zahlungen in Franken: [[IB:{IB_CH1}]].",
     []),
    ("de", "Zentrale: [[PH:+49 89 45 67 23-0]], Durchwahl Versand -14.",
     []),
    ("de", "Bei Rückfragen: [[P:Kai-Uwe Brenninkmeyer]], [[E:kai-uwe.b@weserlicht.example]], [[PH:+49 421 6690 1187]]",
     ["Weserlicht Logistik GmbH"]),
    ("de", "Auf Wunsch von [[PK:Katharina von der Heydt]] wird die Ware erst am 14.04. ausgeliefert.",
     ["Katharina von der Heydt"]),
    ("de", "Lagerleiter [[P:Bogdan Nowak]] (Personalnummer [[EID:11802]]) bestätigt den Wareneingang P00612.",
     []),
    ("de", "Die offene Forderung beträgt [[M:EUR 7.215,-]], bitte Mahnstufe 1 auslösen.",
     []),

    # --------------------------- German negatives ---------------------------
    ("de", "Lieferung WH/OUT/00931 wurde am 14.03.2026 um 09:40 Uhr verladen.", ["Alpenholz Handels GmbH"]),
    ("de", "Bitte 24 Kartons Artikel 4711-BR-XL ins Regal C-04-02 einlagern.", []),
    ("de", "Die Charge CH-2026-118 ist bis zur Freigabe durch die QS gesperrt.", []),
    ("de", "Anlieferung am Dienstag zwischen 7 und 9 Uhr, maximal 33 Paletten.", []),
    ("de", "Auftrag S03321 ist teilweise geliefert, der Rest folgt in KW 15.", ["Ingrid Brandstätter"]),
    ("de", "Sendungsnummer 00340434161094215567, Zustellung voraussichtlich morgen.", []),
    ("de", "Gewicht 12,5 kg pro Karton, Maße 60 x 40 x 35 cm.", []),
    ("de", "Inventur am 30. Juni – das Lager bleibt an diesem Tag geschlossen.", []),
    ("de", "Der Artikel „Eiche Landhausdiele 14 mm“ ist ausverkauft.", []),
    ("de", "Bitte Lieferschein WH/OUT/01207 nachdrucken, das Original ist unleserlich.", []),
    ("de", "Die Tour Berlin–Potsdam startet am 1.4. um 6 Uhr.", []),
    ("de", "Seriennummer SN-2408-33-10975 steht auf dem Typenschild.", []),
    ("de", "Einkaufsauftrag P00871 bestätigt, Liefertermin 22.05.2026.", ["Donautal Agrar GmbH"]),
    ("de", "Retoure RMA-2026/114 wurde am Montag gebucht.", []),
    ("de", "Skonto 2 % bei Zahlung innerhalb von 10 Tagen, netto 30 Tage.", []),
    ("de", "Der Kommissionierauftrag für Freitag, den 17. April, umfasst 86 Positionen.", []),

    # ============================== FRENCH ===============================
    ("fr", "Merci de rappeler [[PK:Camille Dubreuil]] au [[PH:06 12 48 93 57]] avant midi.",
     ["Camille Dubreuil", "Maison Lavande SARL"]),
    ("fr", "Contact facturation : [[PK:DUBREUIL Camille]], [[E:c.dubreuil@maisonlavande.example]]",
     ["Camille Dubreuil", "Maison Lavande SARL"]),
    ("fr", "Adresse de livraison : [[ADR:14 rue des Tanneurs, 69002 Lyon]], quai de déchargement à l'arrière.",
     []),
    ("fr", "Le montant de [[M:3 450,00 €]] reste impayé sur la facture INV/2026/00291.",
     []),
    ("fr", f"Numéro de TVA intracommunautaire du client : [[VAT:{VAT_FR1_SPACED}]].",
     []),
    ("fr", f"Voici notre RIB pour le virement : [[IB:{IB_FR1}]]",
     []),
    ("fr", "Le chauffeur, [[P:Jean-Baptiste Lemaître]], attend au quai 4 depuis 8h30.",
     []),
    ("fr", "Standard : [[PH:+33 (0)4 78 92 15 60]], du lundi au vendredi.",
     []),
    ("fr", "Le client [[OK:Maison Lavande]] demande un avoir de [[M:EUR 215,40]] pour les flacons cassés.",
     ["Maison Lavande SARL", "Camille Dubreuil"]),
    ("fr", "Matricule [[EID:88213]] : badge désactivé suite au départ du salarié.",
     []),
    ("fr", "Connexion suspecte depuis l'adresse [[IP:203.0.113.9]] sur le portail client.",
     []),
    ("fr", f"Le paiement par carte [[CC:{CC_VISA3}]] a été refusé par la banque.",
     []),
    ("fr", "Veuillez contacter [[P:Hélène de La Rochefoucault]] au service achats pour la commande P00412.",
     []),
    ("fr", "Prix unitaire [[M:12,75]] HT pour 300 unités.",
     []),
    ("fr", "Nouvelle adresse du siège : [[ADR:5 bis avenue Jean-Jaurès, 31000 Toulouse]].",
     []),
    ("fr", "Ligne fixe : [[PH:01.45.67.22.90]].",
     []),
    ("fr", "M. [[PK:Ferrand]] a validé le bon de commande, merci de lancer la préparation.",
     ["Olivier Ferrand", "Transports Garnier & Fils SAS"]),
    ("fr", "[[P:Nguyễn Thị Lan]], de l'équipe logistique, a confirmé la réception des 12 palettes.",
     []),
    ("fr", f"Numéro de TVA : [[VAT:{VAT_BE2}]] (Belgique).",
     []),
    ("fr", f"Compte belge du client : [[IB:{IB_BE1}]].",
     []),
    ("fr", "Notre client [[OK:Transports Garnier & Fils]] souhaite décaler la livraison au mercredi.",
     ["Transports Garnier & Fils SAS", "Olivier Ferrand"]),
    ("fr", "Pour toute question : [[PK:Olivier Ferrand]], [[E:olivier.ferrand@garnier-fils.example]]",
     ["Olivier Ferrand", "Transports Garnier & Fils SAS"]),
    ("fr", "Total TTC : [[M:1\u202f250,00\u00a0€]], payable à réception.",
     []),
    ("fr", "Merci d'envoyer le colis à [[P:Anaïs Le Goff]], [[ADR:27 quai de la Fosse, 44000 Nantes]].",
     []),
    ("fr", "Portable de [[P:Yannick N'Diaye]] : [[PH:07 81 22 40 19]].",
     []),
    ("fr", f"Carte enregistrée pour les commandes récurrentes : [[CC:{CC_DINERS}]].",
     []),

    # --------------------------- French negatives ---------------------------
    ("fr", "La commande S00917 a été expédiée le 12/03/2026 à 14h10.", ["Maison Lavande SARL"]),
    ("fr", "Le lot LOT-FR-2291 contient 480 bouteilles de 75 cl.", []),
    ("fr", "Livraison prévue mardi 7 avril entre 8h et 12h.", []),
    ("fr", "Le bon de livraison WH/OUT/02210 est prêt à être imprimé.", []),
    ("fr", "Numéro de suivi Colissimo : 6A18372951047.", []),
    ("fr", "Palette de 1 200 kg, dimensions 120 x 100 x 160 cm.", []),
    ("fr", "Facture INV/2026/00341 validée, échéance à 45 jours fin de mois.", ["Olivier Ferrand"]),
    ("fr", "L'article « Lampe Gaspard laiton » est en rupture jusqu'en septembre.", []),
    ("fr", "Inventaire tournant : allées 3 à 7, samedi 6 juin, de 6h à 10h.", []),
    ("fr", "Réception P00552 : 60 cartons reçus, dont 2 endommagés.", []),

    # =============================== DUTCH ===============================
    ("nl", "Beste mevrouw [[PK:van den Broek]], uw bestelling S03390 is vandaag verzonden.",
     ["Sanne van den Broek", "Groenewoud Tuinmeubelen B.V."]),
    ("nl", "Graag terugbellen op [[PH:+31 (0)20 794 3318]] over de levering van morgen.",
     []),
    ("nl", "Bezorgadres: [[ADR:Prinsengracht 263-1, 1016 GV Amsterdam]], bel aan bij de zijdeur.",
     []),
    ("nl", f"Ons btw-nummer is [[VAT:{VAT_NL2}]].",
     []),
    ("nl", f"Betaling graag op [[IB:{IB_NL2}]] t.n.v. [[OK:Groenewoud Tuinmeubelen B.V.]]",
     ["Groenewoud Tuinmeubelen B.V."]),
    ("nl", "Personeelsnummer [[EID:10293]] is per 1 mei uit dienst; toegangspas graag blokkeren.",
     []),
    ("nl", "De chauffeur, [[P:Ahmed El Amrani]], meldt dat de laadklep defect is.",
     []),
    ("nl", "Factuur INV/2026/00219 bedraagt [[M:EUR 642,18]] inclusief btw.",
     []),
    ("nl", "Ons kantoor is bereikbaar via [[PH:010-4582917]].",
     []),
    ("nl", "Mijn mobiele nummer is [[PH:06-48 27 19 33]], groet, [[P:Femke Jansen-Bakker]]",
     []),
    ("nl", "Inlogpoging vanaf [[IP:192.0.2.78]] is geblokkeerd na vijf mislukte pogingen.",
     []),
    ("nl", f"Creditcard [[CC:{CC_MC3}]] is verlopen, graag een nieuwe kaart doorgeven.",
     []),
    ("nl", "Van: [[PK:Sanne van den Broek]] <[[E:s.vandenbroek@groenewoud.example]]>\nOnderwerp: retour S03390",
     ["Sanne van den Broek", "Groenewoud Tuinmeubelen B.V."]),
    ("nl", "Contactpersoon: [[PK:Van den Broek, Sanne]] (inkoop)",
     ["Sanne van den Broek"]),
    ("nl", "Stukprijs [[M:2,35]] bij afname van minimaal 5.000 stuks.",
     []),
    ("nl", "Adres magazijn: [[ADR:Industrieweg 14, 3044 AS Rotterdam]].",
     []),
    ("nl", f"Btw-nummer van onze Belgische vestiging: [[VAT:{VAT_BE3_SPACED}]].",
     []),
    ("nl", "Klant [[OK:Groenewoud Tuinmeubelen]] wil de levering over twee dagen splitsen.",
     ["Groenewoud Tuinmeubelen B.V."]),
    ("nl", "Badgenummer [[EID:WH-3304]] heeft geen toegang meer tot hal B.",
     []),
    ("nl", f"Terugstorting naar Belgische rekening [[IB:{IB_BE2_COMPACT}]].",
     []),
    ("nl", "Dhr. [[P:Ruud Vermeulen]] komt de monsters vrijdag ophalen.",
     []),
    ("nl", "De schade bedraagt [[M:€312,40]]; de vervoerder vergoedt [[M:€ 150]].",
     []),
    ("nl", "Meneer [[PK:DE JONG]] vraagt of de lege pallets retour kunnen.",
     ["Willem de Jong"]),
    ("nl", f"Amex [[CC:{CC_AMEX2}]] staat op naam van [[P:Marloes ter Horst]].",
     []),

    # ---------------------------- Dutch negatives ----------------------------
    ("nl", "Order S01456 is vandaag om 15:45 opgehaald door de vervoerder.", ["Groenewoud Tuinmeubelen B.V."]),
    ("nl", "Zending WH/OUT/03318 bevat 8 pallets, totaalgewicht 3.200 kg.", []),
    ("nl", "Partij 2026-NL-044 is afgekeurd door de kwaliteitscontrole.", []),
    ("nl", "Levering op woensdag 15 april tussen 10:00 en 14:00.", ["Sanne van den Broek"]),
    ("nl", "Track & trace PostNL: 3SHKLM1234567.", []),
    ("nl", "Utrecht en Eindhoven worden vanaf mei wekelijks beleverd.", []),
    ("nl", "Inkooporder P00733 is bevestigd, levertijd drie weken.", []),
    ("nl", "Artikel 'Tafel Eindhoven 180 cm eiken' is weer op voorraad.", []),
    ("nl", "Voorraadtelling in gang 5, vakken A-05-01 t/m A-05-24.", []),
    ("nl", "De ochtendploeg begint maandag om 05:30 in plaats van 06:00.", []),

    # ============================== SPANISH ==============================
    ("es", "Por favor, llame a [[PK:María José Fernández de Córdoba]] al [[PH:+34 915 48 27 63]].",
     ["María José Fernández de Córdoba", "Olivar del Sur, S.L."]),
    ("es", "Dirección de entrega: [[ADR:Calle de Alcalá 212, 28028 Madrid]], muelle 3.",
     []),
    ("es", f"NIF-IVA del cliente: [[VAT:{VAT_ES1}]].",
     []),
    ("es", f"Datos bancarios: [[IB:{IB_ES1}]].",
     []),
    ("es", "El conductor, [[P:Iñaki Etxeberria]], llegará a las 11:30.",
     []),
    ("es", "Número de empleado [[EID:EMP-3390]] dado de baja en el sistema.",
     []),
    ("es", "Se ha bloqueado el acceso desde la IP [[IP:198.51.100.140]].",
     []),
    ("es", f"La tarjeta [[CC:{CC_VISA4}]] ha sido rechazada.",
     []),
    ("es", "El cliente [[OK:Olivar del Sur S.L.]] solicita aplazar la entrega.",
     ["Olivar del Sur, S.L."]),
    ("es", "Mi móvil es el [[PH:612 34 87 90]]. Un saludo, [[P:Rocío Valdés]]",
     []),
    ("es", "Precio unitario [[M:7,60]] sin IVA, pedido mínimo 100 unidades.",
     []),
    ("es", "Contacto: [[PK:FERNÁNDEZ DE CÓRDOBA, María José]] (compras).",
     ["María José Fernández de Córdoba"]),
    ("es", "Atentamente,\n[[P:Lucía Ortega Villalba]]\nDepartamento de Logística",
     []),
    ("es", "El abono de [[M:1.150 €]] se realizará esta semana.",
     []),
    ("es", "Hable con la Sra. [[P:Ana Belén Quintero]] en el almacén.",
     []),
    ("es", "Teléfono fijo [[PH:(+34) 93 412 05 66]], horario de 9 a 14 h.",
     []),
    ("es", "La incidencia la gestiona [[P:Javier de la Fuente]] desde Zaragoza.",
     []),
    ("es", f"IBAN para devoluciones: [[IB:{IB_ES2_COMPACT}]].",
     []),
    ("es", "[[OK:OLIVAR DEL SUR]] tiene dos pedidos abiertos: S02250 y S02261.",
     ["Olivar del Sur, S.L."]),
    ("es", "Código de empleado [[EID:7781-MAD]] asignado a la carretillera [[P:Marta Gil]].",
     []),
    ("es", "Conexión al ERP desde [[IP:203.0.113.54]] fuera de horario.",
     []),
    ("es", f"CIF del proveedor: [[VAT:{VAT_ES2}]], con domicilio en [[ADR:Calle Mayor 9, 50001 Zaragoza]].",
     []),

    # --------------------------- Spanish negatives ---------------------------
    ("es", "El pedido S02290 salió del almacén el 03/04/2026 a las 17:20.", ["Olivar del Sur, S.L."]),
    ("es", "Lote L-ES-77812, fecha de caducidad 31/12/2027.", []),
    ("es", "Entrega prevista el lunes 18 de mayo.", []),
    ("es", "Albarán WH/OUT/01876 firmado sin incidencias.", []),
    ("es", "Valencia y Sevilla reciben reparto los martes.", []),
    ("es", "Se han recibido 120 cajas de 12 unidades (compra P00691).", []),
    ("es", "Número de seguimiento SEUR: 0187-44-219305.", []),
    ("es", "Factura INV/2026/00145 emitida con vencimiento a 60 días.", ["María José Fernández de Córdoba"]),
    ("es", "El artículo 'Silla Granada haya natural' está sin stock.", []),
    ("es", "Temperatura de la cámara: -18 °C a las 06:00.", []),
    ("es", "Descuento del 3 % por pronto pago.", []),

    # ============================== ITALIAN ==============================
    ("it", "Gentile [[PK:Giulia Di Stefano]], le confermiamo la spedizione dell'ordine S01720.",
     ["Giulia Di Stefano", "Ferramenta Bortolin S.r.l."]),
    ("it", "Indirizzo di consegna: [[ADR:Via Solferino 23, 20121 Milano]], citofono 4.",
     []),
    ("it", f"Partita IVA del cliente: [[VAT:{VAT_IT1}]].",
     []),
    ("it", f"Coordinate bancarie: [[IB:{IB_IT1}]].",
     []),
    ("it", "Centralino [[PH:+39 02 8943 1172]], interno 204.",
     []),
    ("it", "Il magazziniere [[P:Gianluca Dell'Acqua]] ha segnalato due colli danneggiati.",
     []),
    ("it", "Matricola [[EID:MT-5521]] abilitata al reparto resi.",
     []),
    ("it", "Accesso anomalo dall'IP [[IP:203.0.113.166]] sul portale ordini.",
     []),
    ("it", f"Carta [[CC:{CC_JCB1}]] scaduta, si prega di aggiornare i dati.",
     []),
    ("it", "Il cliente [[OK:Ferramenta Bortolin S.r.l.]] chiede una proroga di 30 giorni.",
     ["Ferramenta Bortolin S.r.l."]),
    ("it", "Prezzo unitario [[M:18,90]] IVA esclusa.",
     []),
    ("it", "Inviare la conferma a [[E:ordini@bortolin.example]].",
     ["Ferramenta Bortolin S.r.l."]),
    ("it", "Referente: [[PK:DI STEFANO Giulia]], ufficio acquisti.",
     ["Giulia Di Stefano"]),
    ("it", "Il sig. [[P:Francesco De Luca]] passerà a ritirare la merce giovedì.",
     []),
    ("it", f"IBAN per il rimborso: [[IB:{IB_IT2_COMPACT}]]",
     []),
    ("it", f"P. IVA [[VAT:{VAT_IT2_SPACED}]] – sede legale a Padova.",
     []),
    ("it", "Nuova sede: [[ADR:Corso Vittorio Emanuele II 98, 10121 Torino]].",
     []),
    ("it", "Nota di credito di [[M:EUR 96,50]] emessa per la fattura INV/2026/00198.",
     []),
    ("it", f"Pagamento con carta [[CC:{CC_VISA5_DASH}]] intestata a [[P:Beatrice Lo Presti]].",
     []),

    # --------------------------- Italian negatives ---------------------------
    ("it", "L'ordine S01733 è stato spedito il 14/04/2026 alle 10:15.", ["Ferramenta Bortolin S.r.l."]),
    ("it", "Lotto 26-IT-0912, scadenza 09/2027.", []),
    ("it", "Consegna prevista per venerdì 22 maggio.", []),
    ("it", "Il DDT WH/OUT/02455 è stato firmato dal corriere.", []),
    ("it", "Torino e Bologna sono servite il mercoledì.", []),
    ("it", "Ricevuti 75 colli per l'acquisto P00880.", ["Giulia Di Stefano"]),
    ("it", "L'articolo 'Lampada Ginevra ottone' è esaurito.", []),
    ("it", "La fattura INV/2026/00266 è stata registrata.", []),
    ("it", "Bancale da 800 kg, altezza massima 1,80 m.", []),
]

# --------------------------------------------------------------------------
# Parsing and self-checks
# --------------------------------------------------------------------------

MARK = re.compile(r"\[\[([A-Z]+):(.*?)\]\]", re.S)


def parse(marked):
    text, spans, pos = [], [], 0
    cur = 0
    for m in MARK.finditer(marked):
        pre = marked[pos:m.start()]
        text.append(pre)
        cur += len(pre)
        code, surface = m.group(1), m.group(2)
        if code not in CODES:
            raise ValueError(f"unknown code {code!r} in {marked!r}")
        spans.append({"start": cur, "end": cur + len(surface),
                      "entity": CODES[code], "_surface": surface})
        text.append(surface)
        cur += len(surface)
        pos = m.end()
    text.append(marked[pos:])
    return "".join(text), spans


def fold(s):
    s = s.casefold()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        s = s.replace(a, b)
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c))


def tokens(s):
    return {t for t in re.split(r"[^\w']+", fold(s)) if len(t) > 3}


TITLES = ("mr", "mrs", "ms", "dr", "herr", "frau", "mme", "sr", "sra",
          "sig", "dhr", "mevrouw", "meneer", "prof")
PH_RE = re.compile(r"[+(0-9][0-9 ()./\-+]*[0-9]")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
MONEY_RE = re.compile(r"^(?:[€$£]|USD |EUR |GBP |CHF |US\$)?\s?-?[0-9][0-9.,'\u202f ]*(?:,-)?(?:[\u00a0 ]?(?:€|EUR|USD|GBP|CHF))?$")
IBAN_SCAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b")
DIGITRUN_SCAN = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")


def check_item(it, errors):
    text, spans, known = it["text"], it["spans"], it["known"]
    iid = it["id"]

    def err(msg):
        errors.append(f"{iid}: {msg} | {text!r}")

    if "[[" in text or "]]" in text:
        err("markup left in text")
    last_end = -1
    for sp in sorted(spans, key=lambda s: s["start"]):
        s, e, ent, surf = sp["start"], sp["end"], sp["entity"], sp["_surface"]
        sub = text[s:e]
        if sub != surf:
            err(f"offset mismatch {sub!r} != {surf!r}")
        if s < last_end:
            err(f"overlapping span at {s}")
        last_end = e
        trail = ",;:" if ent == "ORG_KNOWN" else ",.;:"  # "S.r.l." / "B.V." end in a dot
        if not sub or sub != sub.strip() or sub[-1] in trail:
            err(f"untrimmed span {sub!r}")
        if ent == "IBAN" and not iban_valid(sub):
            err(f"invalid IBAN {sub!r}")
        if ent == "CREDIT_CARD":
            digits = re.sub(r"[ -]", "", sub)
            if not (digits.isdigit() and 13 <= len(digits) <= 19 and luhn_valid(digits)):
                err(f"invalid card {sub!r}")
        if ent == "VAT_ID" and not vat_valid(sub):
            err(f"invalid VAT {sub!r}")
        if ent == "IP_ADDRESS":
            try:
                ipaddress.ip_address(sub)
            except ValueError:
                err(f"invalid IP {sub!r}")
        if ent == "EMAIL":
            if not EMAIL_RE.fullmatch(sub) or not re.search(r"(\.example|example\.(com|org))$", sub):
                err(f"bad email {sub!r}")
        if ent == "PHONE":
            nd = sum(c.isdigit() for c in sub)
            if not PH_RE.fullmatch(sub) or not (7 <= nd <= 15):
                err(f"bad phone {sub!r}")
        if ent == "MONEY" and not MONEY_RE.match(sub):
            err(f"bad money {sub!r}")
        if ent == "EMPLOYEE_ID" and (not any(c.isdigit() for c in sub) or " " in sub):
            err(f"bad employee id {sub!r}")
        if ent in ("PERSON", "PERSON_KNOWN"):
            first = sub.split()[0].lower().rstrip(".")
            if first in TITLES or first + "." in TITLES:
                err(f"title inside person span {sub!r}")
            if not sub[0].isalpha():
                err(f"person span must start with a letter {sub!r}")
        if ent in ("PERSON_KNOWN", "ORG_KNOWN"):
            ktoks = set().union(*(tokens(k) for k in known)) if known else set()
            if not (tokens(sub) & ktoks):
                err(f"{ent} {sub!r} matches nothing in known {known}")
        if ent == "PERSON" and known:
            ktoks = set().union(*(tokens(k) for k in known))
            if tokens(sub) & ktoks:
                err(f"PERSON {sub!r} looks like a known name {known}")
    # every literal occurrence of a known name must be covered by a span
    low = text.casefold()
    for k in known:
        for m in re.finditer(re.escape(k.casefold()), low):
            if not any(sp["start"] <= m.start() and m.end() <= sp["end"] for sp in spans):
                err(f"known {k!r} occurs unlabeled")

    def covered(a, b):
        return any(sp["start"] <= a and b <= sp["end"] for sp in spans)

    # nothing identifier-like may hide outside the labels
    for m in IBAN_SCAN.finditer(text):
        if iban_valid(m.group()) and not covered(m.start(), m.end()):
            err(f"valid IBAN outside spans {m.group()!r}")
    for m in DIGITRUN_SCAN.finditer(text):
        d = re.sub(r"[ -]", "", m.group())
        if luhn_valid(d) and not covered(m.start(), m.end()):
            err(f"Luhn-valid digit run outside spans {m.group()!r}")
    for m in EMAIL_RE.finditer(text):
        if not covered(m.start(), m.end()):
            err(f"email outside spans {m.group()!r}")
    for m in re.finditer(r"\b[SP]O?\d{4,6}\b", text):
        if not re.fullmatch(r"[SP]\d{5}", m.group()):
            err(f"non-Odoo order ref {m.group()!r}")


def main():
    items = []
    for lang, marked, known in ITEMS:
        text, spans = parse(marked)
        items.append({"lang": lang, "text": text, "known": list(known), "spans": spans})

    # deterministic shuffle so positives/negatives and languages interleave
    random.Random(20260414).shuffle(items)
    for n, it in enumerate(items, 1):
        it["id"] = f"ho-{n:03d}"

    errors = []
    seen = set()
    for it in items:
        if it["text"] in seen:
            errors.append(f"{it['id']}: duplicate text")
        seen.add(it["text"])
        check_item(it, errors)

    counts = {e: 0 for e in ENTITIES}
    langs = {}
    pos = neg = 0
    for it in items:
        langs[it["lang"]] = langs.get(it["lang"], 0) + 1
        if it["spans"]:
            pos += 1
        else:
            neg += 1
        for sp in it["spans"]:
            counts[sp["entity"]] += 1
    minimum = {e: 12 for e in ENTITIES}
    minimum.update({"PERSON": 30, "PERSON_KNOWN": 25, "ORG_KNOWN": 10})
    for e, lo in minimum.items():
        if counts[e] < lo:
            errors.append(f"entity {e}: only {counts[e]} spans (< {lo})")

    if errors:
        print("SELF-CHECK FAILED:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        sys.exit(1)

    with open(OUT, "w", encoding="utf-8") as f:
        for it in items:
            rec = {
                "id": it["id"], "lang": it["lang"], "text": it["text"],
                "known": it["known"],
                "spans": [{"start": s["start"], "end": s["end"], "entity": s["entity"]}
                          for s in sorted(it["spans"], key=lambda s: s["start"])],
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    print(f"wrote {len(items)} items to {OUT}: {pos} positive, {neg} negative")
    print("languages:", ", ".join(f"{k}={v}" for k, v in sorted(langs.items())))
    for e in ENTITIES:
        print(f"  {e:15s} {counts[e]}")
    print(f"  {'TOTAL':15s} {sum(counts.values())}")


if __name__ == "__main__":
    main()
