//! Text detectors: one `RegexSet` pass tells which detectors can fire on a string; only those
//! run their own regex, and each candidate then passes its validator (mod-97, Luhn, IP parsing,
//! digit counts). An allow-list (Odoo references, SKUs, dates, quantities, tracking numbers)
//! vetoes the weakly validated detectors.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use regex::{Regex, RegexSet, RegexSetBuilder};

/// What a text detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    Iban,
    CreditCard,
    VatId,
    IpAddress,
    Phone,
    Money,
    EmployeeId,
    PostalAddress,
    Person,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Email,
        Kind::Iban,
        Kind::CreditCard,
        Kind::VatId,
        Kind::IpAddress,
        Kind::Phone,
        Kind::Money,
        Kind::EmployeeId,
        Kind::PostalAddress,
        Kind::Person,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Iban => "IBAN",
            Kind::CreditCard => "CREDIT_CARD",
            Kind::VatId => "VAT_ID",
            Kind::IpAddress => "IP_ADDRESS",
            Kind::Phone => "PHONE",
            Kind::Money => "MONEY",
            Kind::EmployeeId => "EMPLOYEE_ID",
            Kind::PostalAddress => "POSTAL_ADDRESS",
            Kind::Person => "PERSON",
        }
    }

    pub fn from_label(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.label() == s)
    }

    /// Checksummed or unambiguous shapes: the allow-list cannot veto them.
    fn strong(self) -> bool {
        matches!(
            self,
            Kind::Email
                | Kind::Iban
                | Kind::CreditCard
                | Kind::VatId
                | Kind::EmployeeId
                | Kind::IpAddress
        )
    }
}

/// What a text must contain for a detector to be worth running. Each need is a superset of
/// what its pattern can match (checked against the ungated path in `tests::gates_never_hide_a_hit`),
/// so that most strings run no detector regex at all.
#[derive(Debug, Clone, Copy)]
enum Need {
    At,
    Colons,
    /// `[A-Z]{2}\d{2}` somewhere (IBAN).
    UpperDigits,
    /// A VAT country code before a digit or capital, and six digits (EU VAT ids).
    VatPrefix,
    /// Eight digits from a `0` that starts a word (national trunk prefix; `00…` counts as
    /// international, which allows eight).
    NationalPhone,
    /// Nine digits from a `3`, `6`–`9` that starts a word (Spain, Italy).
    LeadPhone,
    /// Eight digits after `+` or `00` (E.164).
    IntlPhone,
    /// `NNN-NNNN` (North America).
    NaPhone,
    /// Four dot-separated digit runs (IPv4).
    Dotted,
    /// This many digits in one run of digits and separators (phones, cards).
    Cluster(usize),
    /// A currency symbol or code, and a digit.
    Currency,
    /// A pricing word and a digit–separator–digit number.
    MoneyWord,
    /// A US/UK street word and "12 Main" (a number, a space, a capital).
    UsStreet,
    /// A German or Dutch street suffix followed by " <digit>".
    DeNlStreet,
    /// A French street word and a digit.
    FrStreet,
    /// ", 20121" after a house number: a comma, a space perhaps, four digits.
    CommaPostcode,
    /// One of the literal prefixes of a policy pattern (index into `Detectors::prefixes`).
    Prefix(usize),
    Nothing,
}

impl Need {
    fn met(self, s: &Shape) -> bool {
        match self {
            Need::At => s.at,
            Need::Colons => s.colons >= 2,
            Need::UpperDigits => s.upper_digits,
            Need::VatPrefix => s.vat_prefix && s.digits >= 6,
            Need::Dotted => s.dotted >= 3,
            Need::Cluster(n) => s.cluster >= n,
            Need::NationalPhone => s.national >= 8,
            Need::LeadPhone => s.lead >= 9,
            Need::IntlPhone => s.intl >= 8,
            Need::NaPhone => s.na_tail,
            Need::Currency => s.digits > 0 && (s.currency_symbol || s.words & W_CURRENCY != 0),
            Need::MoneyWord => s.digit_sep_digit && s.words & W_MONEY != 0,
            Need::UsStreet => s.digit_space_upper && s.words & W_US_STREET != 0,
            Need::DeNlStreet => s.de_nl_street,
            Need::FrStreet => s.digits > 0 && s.words & W_FR_STREET != 0,
            Need::CommaPostcode => s.comma_postcode,
            Need::Prefix(_) | Need::Nothing => true,
        }
    }
}

const W_CURRENCY: u8 = 1;
const W_MONEY: u8 = 2;
const W_US_STREET: u8 = 4;
const W_FR_STREET: u8 = 8;
const W_DE_NL_STREET: u8 = 16;
/// A pricing noun (see [`PRICE_WORD`]).
const W_PRICE: u8 = 32;

/// Words the gated patterns need, matched ASCII-case-insensitively (a superset of the patterns'
/// own matching). A pattern stands for every word that contains it ("price" for "unit price"),
/// and non-ASCII words are listed in both cases.
const GATE_WORDS: &[(&str, u8)] = &[
    ("EUR", W_CURRENCY),
    ("USD", W_CURRENCY),
    ("GBP", W_CURRENCY),
    ("CHF", W_CURRENCY),
    ("JPY", W_CURRENCY),
    ("CNY", W_CURRENCY),
    ("SEK", W_CURRENCY),
    ("NOK", W_CURRENCY),
    ("DKK", W_CURRENCY),
    ("PLN", W_CURRENCY),
    ("CZK", W_CURRENCY),
    ("HUF", W_CURRENCY),
    ("CAD", W_CURRENCY),
    ("AUD", W_CURRENCY),
    ("INR", W_CURRENCY),
    ("AED", W_CURRENCY),
    ("SAR", W_CURRENCY),
    ("QAR", W_CURRENCY),
    ("NGN", W_CURRENCY),
    ("ZAR", W_CURRENCY),
    ("KES", W_CURRENCY),
    ("EGP", W_CURRENCY),
    ("MAD", W_CURRENCY),
    ("TRY", W_CURRENCY),
    ("RON", W_CURRENCY),
    ("BGN", W_CURRENCY),
    ("RSD", W_CURRENCY),
    ("ISK", W_CURRENCY),
    ("BRL", W_CURRENCY),
    ("MXN", W_CURRENCY),
    ("ARS", W_CURRENCY),
    ("CLP", W_CURRENCY),
    ("COP", W_CURRENCY),
    ("SGD", W_CURRENCY),
    ("HKD", W_CURRENCY),
    ("NZD", W_CURRENCY),
    ("KRW", W_CURRENCY),
    ("ILS", W_CURRENCY),
    ("THB", W_CURRENCY),
    ("MYR", W_CURRENCY),
    ("IDR", W_CURRENCY),
    ("PHP", W_CURRENCY),
    ("VND", W_CURRENCY),
    ("TWD", W_CURRENCY),
    ("price", W_MONEY | W_PRICE),
    ("cost", W_MONEY | W_PRICE),
    ("margin", W_MONEY | W_PRICE),
    ("discount", W_MONEY | W_PRICE),
    ("total", W_MONEY | W_PRICE),
    ("amount", W_MONEY | W_PRICE),
    ("was", W_MONEY),
    ("were", W_MONEY),
    ("now", W_MONEY),
    ("preis", W_MONEY | W_PRICE),
    ("betrag", W_MONEY | W_PRICE),
    ("kosten", W_MONEY | W_PRICE),
    ("vorher", W_MONEY),
    ("war", W_MONEY),
    ("prix", W_MONEY | W_PRICE),
    ("montant", W_MONEY | W_PRICE),
    ("coût", W_MONEY | W_PRICE),
    ("coÛt", W_MONEY | W_PRICE),
    ("avant", W_MONEY),
    ("était", W_MONEY),
    ("Était", W_MONEY),
    ("prijs", W_MONEY | W_PRICE),
    ("bedrag", W_MONEY | W_PRICE),
    ("voorheen", W_MONEY),
    ("precio", W_MONEY | W_PRICE),
    ("import", W_MONEY | W_PRICE),
    ("prezzo", W_MONEY | W_PRICE),
    ("tarif", W_PRICE),
    ("listino", W_PRICE),
    ("st", W_US_STREET),
    ("ave", W_US_STREET),
    ("road", W_US_STREET),
    ("rd", W_US_STREET),
    ("lane", W_US_STREET),
    ("ln", W_US_STREET),
    ("boulevard", W_US_STREET | W_FR_STREET),
    ("blvd", W_US_STREET),
    ("drive", W_US_STREET),
    ("dr", W_US_STREET),
    ("way", W_US_STREET),
    ("court", W_US_STREET),
    ("ct", W_US_STREET),
    ("pl", W_US_STREET),
    ("parkway", W_US_STREET),
    ("pkwy", W_US_STREET),
    ("rue", W_FR_STREET),
    ("av", W_FR_STREET),
    ("bd", W_FR_STREET),
    ("chemin", W_FR_STREET),
    ("place", W_FR_STREET),
    ("allée", W_FR_STREET),
    ("allÉe", W_FR_STREET),
    ("impasse", W_FR_STREET),
    ("quai", W_FR_STREET),
    ("route", W_FR_STREET),
    ("straße", W_DE_NL_STREET),
    ("strasse", W_DE_NL_STREET),
    ("str.", W_DE_NL_STREET),
    ("weg", W_DE_NL_STREET),
    ("gasse", W_DE_NL_STREET),
    ("platz", W_DE_NL_STREET),
    ("allee", W_DE_NL_STREET),
    ("ring", W_DE_NL_STREET),
    ("damm", W_DE_NL_STREET),
    ("ufer", W_DE_NL_STREET),
    ("chaussee", W_DE_NL_STREET),
    ("straat", W_DE_NL_STREET),
    ("laan", W_DE_NL_STREET),
    ("plein", W_DE_NL_STREET),
    ("gracht", W_DE_NL_STREET),
    ("kade", W_DE_NL_STREET),
    ("singel", W_DE_NL_STREET),
    ("dijk", W_DE_NL_STREET),
];

static GATE: std::sync::LazyLock<Option<aho_corasick::dfa::DFA>> = std::sync::LazyLock::new(|| {
    aho_corasick::dfa::DFA::builder()
        .ascii_case_insensitive(true)
        .build(GATE_WORDS.iter().map(|(w, _)| w))
        .ok()
});

/// Every match of `dfa`'s words in `haystack`, overlapping ones too, as (pattern, start, end)
/// in the order of their ends, until `found` says true (then true). What
/// `find_overlapping_iter` reports, read off the automaton's states byte by byte: short words
/// ("st", "m") match all over a text, and the iterator's own work per match cost more than the
/// transitions (`tests::overlapping_matches_are_the_iterators`).
pub(crate) fn overlapping_matches(
    dfa: &aho_corasick::dfa::DFA,
    haystack: &[u8],
    mut found: impl FnMut(usize, usize, usize) -> bool,
) -> bool {
    use aho_corasick::Anchored;
    use aho_corasick::automaton::Automaton;
    let Ok(mut sid) = dfa.start_state(Anchored::No) else {
        return false;
    };
    for (i, &b) in haystack.iter().enumerate() {
        sid = dfa.next_state(Anchored::No, sid, b);
        if dfa.is_special(sid) && dfa.is_match(sid) {
            for k in 0..dfa.match_len(sid) {
                let pid = dfa.match_pattern(sid, k);
                let end = i + 1;
                if found(pid.as_usize(), end - dfa.pattern_len(pid), end) {
                    return true;
                }
            }
        }
    }
    false
}

/// One cheap pass over the bytes of a text (and one word search when it has digits).
#[derive(Debug, Default, PartialEq)]
struct Shape {
    digits: usize,
    colons: usize,
    at: bool,
    cluster: usize,
    dotted: usize,
    upper_digits: bool,
    /// A VAT country code followed by a digit or capital.
    vat_prefix: bool,
    /// Digits counted from where a national (`0…`), Spanish/Italian (`[36789]…`) or
    /// international (`+…`, `00…`) number can start, to the end of its run.
    national: usize,
    lead: usize,
    intl: usize,
    na_tail: bool,
    currency_symbol: bool,
    digit_sep_digit: bool,
    digit_space_upper: bool,
    comma_postcode: bool,
    de_nl_street: bool,
    words: u8,
    /// "1k", "0k": an amount band may be present.
    band: bool,
    odd_case: bool,
}

const VAT_COUNTRIES: [[u8; 2]; 29] = [
    *b"AT", *b"BE", *b"BG", *b"CY", *b"CZ", *b"DE", *b"DK", *b"EE", *b"EL", *b"ES", *b"FI", *b"FR",
    *b"GB", *b"HR", *b"HU", *b"IE", *b"IT", *b"LT", *b"LU", *b"LV", *b"MT", *b"NL", *b"PL", *b"PT",
    *b"RO", *b"SE", *b"SI", *b"SK", *b"XI",
];

/// Bytes that may sit between the digits of one phone or card number.
fn joins_digits(b: u8) -> bool {
    matches!(b, b' ' | b'.' | b'-' | b'/' | b'(' | b')' | b'+')
}

impl Shape {
    fn of(text: &str) -> Self {
        Self::scan(text, true)
    }

    /// `skip: false` reads every byte on its own: the reference that
    /// `tests::skipping_letters_changes_no_shape` holds the skipping pass to.
    #[inline(always)]
    fn scan(text: &str, skip: bool) -> Self {
        let t = text.as_bytes();
        let mut s = Shape::default();
        let (mut run, mut gap, mut chain) = (0usize, 0usize, 0usize);
        let (mut national, mut lead, mut intl): (Option<usize>, Option<usize>, Option<usize>) =
            (None, None, None);
        // Most bytes are lower-case letters: all they do is end a run of digits, so a stretch of
        // them is skipped at once, with the spaces between them (a space after such a letter
        // changes nothing either: it neither joins digits nor follows a number).
        let plain = |b: u8| b.is_ascii_lowercase() && b != b'k';
        let mut next_i = 0;
        while next_i < t.len() {
            let i = next_i;
            let b = t[i];
            next_i = i + 1;
            if plain(b) {
                (run, gap, chain) = (0, 0, 0);
                (national, lead, intl) = (None, None, None);
                while skip
                    && next_i < t.len()
                    && (plain(t[next_i]) || (t[next_i] == b' ' && plain(t[next_i - 1])))
                {
                    next_i += 1;
                }
                continue;
            }
            let prev = if i > 0 { t[i - 1] } else { 0 };
            match b {
                b'0'..=b'9' => {
                    s.digits += 1;
                    run += 1;
                    gap = 0;
                    s.cluster = s.cluster.max(run);
                    // Where a phone number can start, and how many digits follow in its run.
                    let word_start = !(prev.is_ascii_alphanumeric() || prev == b'_');
                    let next = t.get(i + 1).copied().unwrap_or(0);
                    if b == b'0' && word_start && next.is_ascii_digit() {
                        national.get_or_insert(0);
                    }
                    if matches!(b, b'3' | b'6'..=b'9') && word_start {
                        lead.get_or_insert(0);
                    }
                    let plus = prev == b'+' && b != b'0';
                    let double_zero = b == b'0'
                        && word_start
                        && next == b'0'
                        && matches!(t.get(i + 2), Some(b'1'..=b'9'));
                    if plus || double_zero {
                        intl.get_or_insert(0);
                    }
                    for (counter, best) in [
                        (&mut national, &mut s.national),
                        (&mut lead, &mut s.lead),
                        (&mut intl, &mut s.intl),
                    ] {
                        if let Some(n) = counter {
                            *n += 1;
                            *best = (*best).max(*n);
                        }
                    }
                    // "555-0199": the tail of a North American number.
                    s.na_tail |= i >= 4
                        && matches!(t[i - 1], b'-' | b'.' | b' ')
                        && t[i - 4..i - 1].iter().all(u8::is_ascii_digit)
                        && t.get(i..i + 4)
                            .is_some_and(|d| d.iter().all(u8::is_ascii_digit));
                    if prev.is_ascii_uppercase() && i >= 2 && t[i - 2].is_ascii_uppercase() {
                        s.upper_digits |= t.get(i + 1).is_some_and(u8::is_ascii_digit);
                    }
                    let sep_then_digit = match t.get(i + 1..).unwrap_or(&[]) {
                        [b',' | b'.' | b' ' | b'\'', d, ..] => d.is_ascii_digit(),
                        [0xc2, 0xa0, d, ..] => d.is_ascii_digit(),
                        [0xe2, 0x80, 0xaf | 0x99, d, ..] => d.is_ascii_digit(),
                        _ => false,
                    };
                    s.digit_sep_digit |= sep_then_digit;
                }
                _ => {
                    if run > 0 && joins_digits(b) && gap < 3 {
                        gap += 1;
                    } else {
                        run = 0;
                        gap = 0;
                        (national, lead, intl) = (None, None, None);
                    }
                    match b {
                        b':' => s.colons += 1,
                        b'@' => s.at = true,
                        b'$' => s.currency_symbol = true,
                        b'k' => s.band |= matches!(prev, b'0' | b'1'),
                        // €, £, ¥, ₹; the Kelvin sign and long s.
                        0xc2 | 0xc5 | 0xe2 => match t.get(i + 1..).unwrap_or(&[]) {
                            [0xa3 | 0xa5, ..] if b == 0xc2 => s.currency_symbol = true,
                            [0x82, 0xac | 0xb9, ..] if b == 0xe2 => s.currency_symbol = true,
                            [0x84, 0xaa, ..] if b == 0xe2 => s.odd_case = true,
                            [0xbf, ..] if b == 0xc5 => s.odd_case = true,
                            _ => {}
                        },
                        b'A'..=b'Z' if prev.is_ascii_uppercase() => {
                            let rest = t.get(i + 1..).unwrap_or(&[]);
                            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                            s.vat_prefix |= VAT_COUNTRIES.contains(&[prev, b])
                                && rest
                                    .first()
                                    .is_some_and(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
                        }
                        b' ' => {
                            let next_upper = t.get(i + 1).is_some_and(u8::is_ascii_uppercase);
                            let after_number = prev.is_ascii_digit()
                                || (prev.is_ascii_uppercase()
                                    && i >= 2
                                    && t[i - 2].is_ascii_digit());
                            s.digit_space_upper |= next_upper && after_number;
                        }
                        b',' => {
                            let rest = t.get(i + 1..).unwrap_or(&[]);
                            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                            s.comma_postcode |= prev.is_ascii_alphanumeric()
                                && rest.len() >= 4
                                && rest[..4].iter().all(u8::is_ascii_digit);
                        }
                        _ => {}
                    }
                }
            }
            // Dotted quads: digits '.' digits '.' …
            match b {
                b'0'..=b'9' => {}
                b'.' if prev.is_ascii_digit() && t.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                    chain += 1;
                    s.dotted = s.dotted.max(chain);
                }
                _ => chain = 0,
            }
        }
        if s.digits == 0 {
            return s;
        }
        match &*GATE {
            Some(dfa) if !s.odd_case => {
                overlapping_matches(dfa, t, |pattern, _, end| {
                    let (_, w) = GATE_WORDS[pattern];
                    s.words |= w;
                    if w & W_DE_NL_STREET != 0 {
                        s.de_nl_street |= matches!(
                            t.get(end..end + 2),
                            Some([b' ', d]) if d.is_ascii_digit()
                        );
                    }
                    false
                });
            }
            // Without the word search every word-gated detector runs.
            _ => {
                s.words = u8::MAX;
                s.de_nl_street = true;
            }
        }
        s
    }
}

/// A match: byte offsets into the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

const B: &str = "(?-u:\\b)";

/// The bands `generalize` writes; nothing overlapping one is redacted again.
const BAND: &str = r"(?-u:\b)(?:under 1k|1k–10k|10k–100k|over 100k)(?: [A-Z]{3}| [€$£¥₹])?";

/// The built-in detector patterns.
fn patterns() -> Vec<(Kind, Need, String)> {
    // "95,-" is German and Dutch for 95.00.
    let num =
        r"(?:\d{1,3}(?:[,.\x{202f}\x{a0} '’]\d{3})+(?:[.,]\d{1,2}|,-)?|\d+(?:[.,]\d{1,2}|,-)?)";
    let grouped = r"(?:\d{1,3}(?:[,.\x{202f}\x{a0} '’]\d{3})+(?:[.,]\d{1,2})?|\d+[.,]\d{2})";
    let cur = format!(
        r"(?:US\$|C\$|A\$|[$€£¥₹]|{B}(?:EUR|USD|GBP|CHF|JPY|CNY|SEK|NOK|DKK|PLN|CZK|HUF|CAD|AUD|INR|AED|SAR|QAR|NGN|ZAR|KES|EGP|MAD|TRY|RON|BGN|RSD|ISK|BRL|MXN|ARS|CLP|COP|SGD|HKD|NZD|KRW|ILS|THB|MYR|IDR|PHP|VND|TWD){B})"
    );
    let mult = format!(r"(?:[ \x{{a0}}\x{{202f}}]?[kKmM]{B})?");
    let sp = r"[ \x{a0}\x{202f}]?";
    vec![
        (Kind::Email, Need::At, r"(?i)[a-z0-9._%+'\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,24}".to_owned()),
        (Kind::Iban, Need::UpperDigits, format!(r"{B}[A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]){{11,32}}")),
        (Kind::CreditCard, Need::Cluster(13), format!(r"{B}\d(?:[ \-]?\d){{12,18}}{B}")),
        // EU VAT ids, digits possibly grouped ("BE 0641.827.323"); the compact form is then
        // checked against the country's format in `validate`.
        (
            Kind::VatId,
            Need::VatPrefix,
            format!(r"{B}(?:AT ?U|ATU|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|GB|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI) ?[0-9A-Z](?:[ .]?[0-9A-Z]){{6,13}}{B}"),
        ),
        (
            Kind::IpAddress,
            Need::Dotted,
            format!(r"{B}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){{3}}{B}"),
        ),
        (Kind::IpAddress, Need::Colons, r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}".to_owned()),
        // E.164 and 00-prefixed international numbers.
        (Kind::Phone, Need::IntlPhone, format!(r"(?:\(\+[1-9]\d{{0,2}}\)|\+[1-9]\d{{0,2}}|{B}00[1-9]\d{{0,2}})(?:[ .\-/]?\(0\))?(?:[ .\-/]?\d){{6,13}}{B}")),
        // North American (NNN) NNN-NNNN and NNN-NNN-NNNN.
        (Kind::Phone, Need::NaPhone, format!(r"(?:\+1[\-. ]?|{B}1[\-. ])?(?:\(\d{{3}}\) ?|{B}\d{{3}}[\-. ])\d{{3}}[\-. ]\d{{4}}{B}")),
        // National trunk-prefix forms: UK, DE, FR, NL, BE, IT (validated to 9–12 digits).
        (Kind::Phone, Need::NationalPhone, format!(r"{B}0\d{{1,4}}(?: ?[/.\-] ?| )?\d{{2,8}}(?:[ /.\-]?\d{{2,8}}){{0,3}}{B}")),
        // Spanish and Italian numbers without trunk prefix.
        (Kind::Phone, Need::LeadPhone, format!(r"{B}[6789]\d{{2}} ?\d{{3}} ?\d{{3}}{B}|{B}[6789]\d{{2}}(?: \d{{2}}){{3}}{B}|{B}9\d ?\d{{3}} ?\d{{2}} ?\d{{2}}{B}|{B}3\d{{2}} ?\d{{3}} ?\d{{3,4}}{B}")),
        (Kind::Money, Need::Currency, format!(r"{cur}{sp}{num}{mult}")),
        (Kind::Money, Need::Currency, format!(r"{num}{mult}{sp}{cur}")),
        (
            Kind::Money,
            Need::MoneyWord,
            format!(
                r"(?i:unit price|price|prices|cost|costs|margin|discount|subtotal|total|amount|was|were|now|preis|stückpreis|einzelpreis|betrag|kosten|vorher|war|prix unitaire|prix|montant|coût|avant|était|prijs|eenheidsprijs|bedrag|stuksprijs|voorheen|precio unitario|precio|importe|prezzo unitario|prezzo|importo)\s*(?:of|:|=|is|at|von|de|van|bei|à)?\s*({grouped}){B}"
            ),
        ),
        (
            Kind::PostalAddress,
            Need::UsStreet,
            format!(
                r"{B}\d{{1,5}}[A-Z]? (?:[NSEW]\.? )?(?:[A-Z][a-z]+ ){{1,3}}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Lane|Ln\.?|Boulevard|Blvd\.?|Drive|Dr\.?|Way|Court|Ct\.?|Place|Pl\.?|Parkway|Pkwy){B}\.?(?:, ?[A-Z][a-z]+(?: [A-Z][a-z]+)?)?(?:,? ?(?:[A-Z]{{2}} \d{{5}}(?:-\d{{4}})?|[A-Z]{{1,2}}\d[A-Z\d]? ?\d[A-Z]{{2}}){B})?"
            ),
        ),
        (
            Kind::PostalAddress,
            Need::DeNlStreet,
            r"\p{Lu}[\p{Ll}ß]+(?:-\p{Lu}[\p{Ll}ß]+)*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|straat|laan|plein|gracht|kade|singel|dijk) \d{1,4}(?:-\d{1,4})? ?[a-zA-Z]?(?:, ?(?:\d{5}|\d{4} ?[A-Z]{2}) \p{Lu}[\p{L}\-]+)?".to_owned(),
        ),
        (
            Kind::PostalAddress,
            Need::FrStreet,
            format!(
                r"{B}\d{{1,4}}(?: ?(?:bis|ter))?,? (?i:rue|avenue|av\.|boulevard|bd|chemin|place|allée|impasse|quai|route) (?:(?:de la|du|des|de|d')\s?)?[\p{{L}}'’\-]+(?: \p{{Lu}}[\p{{L}}'’\-]+)*(?:, ?\d{{5}} \p{{Lu}}[\p{{L}}\-]+)?"
            ),
        ),
        // Any street and number when a postcode and city follow: "Via Roma 15, 20121 Milano".
        (
            Kind::PostalAddress,
            Need::CommaPostcode,
            r"\p{Lu}[\p{L}'’\-]+\.?(?: (?:\p{Ll}{1,3}|\p{Lu}[\p{L}'’\-]+\.?)){0,3} \d{1,4}(?:-\d{1,4})?[a-zA-Z]?, ?\d{4,5} \p{Lu}[\p{L}\-]+".to_owned(),
        ),
    ]
}

fn allow_patterns() -> Vec<String> {
    vec![
        // Odoo references: S00042, P00017, QC00058; WH/OUT/00123, INV/2026/00077, RMA/2026/0012.
        format!(r"{B}[A-Z]{{1,4}}\d{{4,6}}{B}"),
        format!(r"{B}[A-Z][A-Z0-9]{{1,5}}(?:/[A-Z0-9]{{1,6}})+/\d{{2,6}}{B}"),
        // SKUs and internal references: [BLT-M8], FRK-2200-B, LOT-2026-11-0042.
        r"\[[A-Za-z0-9][A-Za-z0-9._/\-]{0,30}\]".to_owned(),
        format!(r"{B}[A-Z]{{2,5}}-[A-Z0-9]{{1,8}}(?:-[A-Z0-9]{{1,8}}){{0,4}}{B}"),
        // Dates and times.
        format!(r"{B}\d{{4}}-\d{{2}}-\d{{2}}(?:[ T]\d{{2}}:\d{{2}}(?::\d{{2}})?(?:\.\d+)?Z?)?"),
        format!(r"{B}\d{{1,2}}[./]\d{{1,2}}[./]\d{{2,4}}{B}"),
        format!(r"{B}\d{{1,2}}:\d{{2}}(?::\d{{2}})?{B}"),
        // Quantities with units.
        format!(
            r"{B}\d+(?:[.,]\d+)? ?(?:pcs|pc|units?|pallets?|cartons?|boxes|crates|kg|g|t|m|cm|mm|l|ml|Stk|Stück|colis|dozijn|EA|rolls?|pezzi|pz|piezas|pièces|stuks){B}"
        ),
        // Carrier tracking and container numbers.
        format!(r"{B}1Z[0-9A-Z]{{16}}{B}"),
        format!(r"{B}JJD\d{{10,20}}{B}"),
        format!(r"{B}[A-Z]{{3}}U\d{{7}}{B}"),
        // exbrief's own amount bands, so that redacting twice changes nothing.
        BAND.to_owned(),
    ]
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// The built-in patterns, compiled once per process and shared by every policy.
#[derive(Debug)]
struct Builtin {
    regexes: Vec<(Kind, Need, Regex)>,
    allow_set: RegexSet,
    allow: Vec<Regex>,
    band: Regex,
}

fn compile(p: &str) -> Result<Regex, PatternError> {
    regex::RegexBuilder::new(p)
        .dfa_size_limit(8 << 20)
        .build()
        .map_err(|e| PatternError {
            pattern: p.to_owned(),
            reason: e.to_string(),
        })
}

impl Builtin {
    fn compile() -> Result<Self, PatternError> {
        let regexes = patterns()
            .iter()
            .map(|(k, n, p)| compile(p).map(|r| (*k, *n, r)))
            .collect::<Result<Vec<_>, _>>()?;
        let allow_list = allow_patterns();
        let allow = allow_list
            .iter()
            .map(|p| compile(p))
            .collect::<Result<Vec<_>, _>>()?;
        // A generous DFA budget keeps the set on the fast path for long texts.
        let allow_set = RegexSetBuilder::new(&allow_list)
            .dfa_size_limit(32 << 20)
            .build()
            .map_err(|e| PatternError {
                pattern: "(allow set)".to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            regexes,
            allow_set,
            allow,
            band: compile(BAND)?,
        })
    }
}

static BUILTIN: LazyLock<Result<Builtin, PatternError>> = LazyLock::new(Builtin::compile);

/// Compiles the built-in detector and allow-list patterns afresh (they are otherwise compiled
/// once per process): what the first policy load pays. Returns how many patterns it compiled.
pub fn compile_builtin_patterns() -> Result<usize, PatternError> {
    let b = Builtin::compile()?;
    Ok(b.regexes.len() + b.allow.len() + 1)
}

/// What a match of `pattern` must start with, when the pattern says so: a finite set of
/// non-empty literal prefixes (regex-syntax's extractor). Lets a policy's own patterns be
/// skipped on texts that cannot hold them.
fn prefix_gate(pattern: &str) -> Option<AhoCorasick> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let seq = regex_syntax::hir::literal::Extractor::new().extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .build(literals.iter().map(|l| l.as_bytes()))
        .ok()
}

/// Compiled detectors for one policy.
#[derive(Debug, Clone)]
pub struct Detectors {
    /// Each detector with what a text must contain before it is worth running.
    regexes: Vec<(Kind, Need, Regex)>,
    /// Literal prefixes of the policy's own patterns (`Need::Prefix`).
    prefixes: Vec<AhoCorasick>,
    builtin: &'static Builtin,
    /// The policy's own allow patterns.
    extra_allow: Vec<Regex>,
}

impl Detectors {
    /// `enabled` selects detectors (all when `None`); `employee_ids` and `extra_allow` come
    /// from the policy file. A pattern with a capture group reports only group 1.
    pub fn new(
        enabled: Option<&[Kind]>,
        employee_ids: &[String],
        extra_allow: &[String],
    ) -> Result<Self, PatternError> {
        let builtin = BUILTIN.as_ref().map_err(Clone::clone)?;
        let mut regexes = builtin.regexes.clone();
        let mut prefixes = Vec::new();
        for p in employee_ids {
            let need = match prefix_gate(p) {
                Some(ac) => {
                    prefixes.push(ac);
                    Need::Prefix(prefixes.len() - 1)
                }
                None => Need::Nothing,
            };
            regexes.push((Kind::EmployeeId, need, compile(p)?));
        }
        if let Some(kinds) = enabled {
            regexes.retain(|(k, _, _)| kinds.contains(k));
        }
        let extra_allow = extra_allow
            .iter()
            .map(|p| compile(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            regexes,
            prefixes,
            builtin,
            extra_allow,
        })
    }

    /// Spans the allow-list protects in `text`.
    pub fn allowed(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        let b = self.builtin;
        let builtin = b.allow_set.matches(text).into_iter().map(|i| &b.allow[i]);
        for re in builtin.chain(&self.extra_allow) {
            for m in re.find_iter(text) {
                out.push((m.start(), m.end()));
            }
        }
    }

    /// Appends validated, non-overlapping hits for `text`. `allowed` is filled with the
    /// allow-listed spans when (and only when) a weak candidate needs checking against them.
    pub fn find(&self, text: &str, allowed: &mut Option<Vec<(usize, usize)>>, out: &mut Vec<Hit>) {
        self.find_gated(text, allowed, out, true, &mut Vec::new());
    }

    /// [`Detectors::find`], and in `shadows` the spans of matches that were then rejected (by
    /// a validator, the allow-list or a band) and the tails that a validator trimmed off an
    /// accepted match: a match hides the positions it covers from the rest of its pattern's
    /// search, so replacing text that touches one can reveal a hit. When anything was vetoed,
    /// the allow-listed spans and bands are shadows too: a veto lasts only as long as the
    /// shape that made it. Returns whether the text
    /// holds a decimal amount for the pricing-sentence rule, which looks a whole sentence
    /// ahead of a pricing noun and so is not local to any one replacement.
    pub fn find_shadowed(
        &self,
        text: &str,
        allowed: &mut Option<Vec<(usize, usize)>>,
        out: &mut Vec<Hit>,
        shadows: &mut Vec<(usize, usize)>,
    ) -> Amounts {
        self.find_gated(text, allowed, out, true, shadows)
    }

    /// Whether a pattern of the policy's own (`employee_id_patterns`) matches `text`: such a
    /// pattern may match brackets or reach across a line, so no replacement is quiet to it.
    pub fn own_patterns_match(&self, text: &str) -> bool {
        self.regexes.iter().any(|(_, need, re)| {
            matches!(need, Need::Prefix(_) | Need::Nothing) && re.is_match(text)
        })
    }

    /// `gated: false` runs every detector whatever the text holds: the reference the gates are
    /// tested against.
    fn find_gated(
        &self,
        text: &str,
        allowed: &mut Option<Vec<(usize, usize)>>,
        out: &mut Vec<Hit>,
        gated: bool,
        shadows: &mut Vec<(usize, usize)>,
    ) -> Amounts {
        if text.len() < 4 {
            return Amounts::default();
        }
        let shape = if gated {
            Shape::of(text)
        } else {
            Shape::default()
        };
        let mut candidates: Vec<Hit> = Vec::new();
        for (kind, need, re) in &self.regexes {
            let may_match = match need {
                Need::Prefix(i) => self.prefixes.get(*i).is_none_or(|ac| ac.is_match(text)),
                need => need.met(&shape),
            };
            if gated && !may_match {
                continue;
            }
            // A match (its whole span) and the part its pattern reports (group 1 if any).
            let mut judge = |whole: (usize, usize), (from, to): (usize, usize)| match validate(
                *kind, text, from, to,
            ) {
                Some((start, end)) => {
                    if end < whole.1 {
                        shadows.push((end, whole.1));
                    }
                    candidates.push(Hit {
                        start,
                        end,
                        kind: *kind,
                    });
                }
                None => shadows.push(whole),
            };
            if re.captures_len() > 1 {
                for caps in re.captures_iter(text) {
                    let Some(all) = caps.get(0) else { continue };
                    let m = caps.get(1).unwrap_or(all);
                    judge((all.start(), all.end()), (m.start(), m.end()));
                }
            } else {
                for m in re.find_iter(text) {
                    judge((m.start(), m.end()), (m.start(), m.end()));
                }
            }
        }
        if !gated || (shape.digit_sep_digit && shape.words & W_PRICE != 0) {
            price_sentences(text, &mut candidates, shadows);
        }
        let amounts = Amounts {
            decimal: !gated || shape.digit_sep_digit,
            pricing_noun: !gated || shape.words & W_PRICE != 0,
        };
        if candidates.is_empty() {
            return amounts;
        }
        if candidates.iter().any(|h| !h.kind.strong()) && allowed.is_none() {
            let mut spans = Vec::new();
            self.allowed(text, &mut spans);
            *allowed = Some(spans);
        }
        let allowed: &[(usize, usize)] = allowed.as_deref().unwrap_or(&[]);
        // A weakly validated match inside an allow-listed shape is that shape (a date, a SKU);
        // one touching an amount band is the band.
        // A band's currency ("over 100k EUR") vetoes nothing: "over 100k EUR 250.000,00" holds
        // an amount of its own.
        let bands: Vec<(usize, usize)> = if !gated || shape.band {
            self.builtin
                .band
                .find_iter(text)
                // Every band's words end in its last lower-case `k`; its currency has none.
                .map(|m| {
                    let words = m.as_str().rfind('k').map_or(m.len(), |k| k + 1);
                    (m.start(), m.start() + words)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut vetoed = false;
        candidates.retain(|h| {
            let keep = h.kind.strong()
                || !(allowed.iter().any(|&(s, e)| s <= h.start && h.end <= e)
                    || bands.iter().any(|&(s, e)| h.start < e && s < h.end));
            if !keep {
                shadows.push((h.start, h.end));
                vetoed = true;
            }
            keep
        });
        // A veto holds only while the allow-listed shape or band does: replacing part of one
        // ("0301234567 m" as a quantity before "m.weber@…") lifts it.
        if vetoed {
            shadows.extend(allowed.iter().copied());
            shadows.extend(bands.iter().copied());
        }
        // Earliest first; at the same start the strongest kind, then the longest.
        candidates.sort_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(a.kind.cmp(&b.kind))
                .then(b.end.cmp(&a.end))
        });
        // Overlapping candidates merge into one span of the strongest kind: redacting a little
        // more is safer than leaving the tail of a phone number behind.
        let first = out.len();
        for h in candidates {
            match out[first..].last_mut() {
                Some(prev) if h.start < prev.end => {
                    prev.end = prev.end.max(h.end);
                    prev.kind = prev.kind.min(h.kind);
                }
                _ => out.push(h),
            }
        }
        amounts
    }
}

/// What the pricing-sentence rule can see in a text (see [`Detectors::find_shadowed`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Amounts {
    /// A digit, a separator and a digit: perhaps a decimal amount.
    pub decimal: bool,
    /// Perhaps a pricing noun (a superset: the byte pass's word search).
    pub pricing_noun: bool,
}

/// Whether `s` holds a pricing noun, as the pricing-sentence rule reads one ("[PRICE]" does).
pub fn names_a_price(s: &str) -> bool {
    PRICE_WORD.is_match(s)
}

/// Pricing nouns: in a sentence that names one, the decimal amounts after it are prices
/// ("Einzelpreis 18,40 statt 16,90", "list price 27.40, discount 12%, net 24.11").
static PRICE_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i:prices?|costs?|margin|discount|subtotal|total|amount|preis|betrag|kosten|prix|montant|coût|tarif|prijs|bedrag|precio|importe|prezzo|importo|listino)",
    )
    .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
});

/// An amount with two decimals, thousands grouped or not.
static DECIMAL_AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)\d{1,3}(?:[.,'\x{a0}\x{202f}]\d{3})*[.,]\d{2}(?-u:\b)|(?-u:\b)\d{4,}[.,]\d{2}(?-u:\b)")
        .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
});

/// How far after a pricing noun its sentence is searched for amounts, in bytes.
const PRICE_SENTENCE: usize = 120;

/// Money candidates from sentences that talk about prices (see [`PRICE_WORD`]).
fn price_sentences(text: &str, out: &mut Vec<Hit>, shadows: &mut Vec<(usize, usize)>) {
    for kw in PRICE_WORD.find_iter(text) {
        let rest = &text[kw.end()..];
        let mut end = rest
            .match_indices(['.', '!', '?', ';', '\n'])
            .find(|(i, c)| {
                *c == "\n" || rest[i + 1..].chars().next().is_none_or(char::is_whitespace)
            })
            .map_or(rest.len(), |(i, _)| i);
        if end > PRICE_SENTENCE {
            end = PRICE_SENTENCE;
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            // Never cut a number in two.
            let tail = rest[end..]
                .bytes()
                .take_while(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'\''));
            end += tail.count();
        }
        let window = &text[..kw.end() + end];
        let mut at = kw.end();
        while let Some(m) = DECIMAL_AMOUNT.find_at(window, at) {
            match validate(Kind::Money, text, m.start(), m.end()) {
                Some((start, end)) => out.push(Hit {
                    start,
                    end,
                    kind: Kind::Money,
                }),
                None => shadows.push((m.start(), m.end())),
            }
            at = m.end().max(at + 1);
            if at >= window.len() {
                break;
            }
        }
    }
}

/// EU VAT formats on the compact form (no spaces or dots).
static VAT_COMPACT: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"^(?:ATU\d{8}|BE[01]\d{9}|BG\d{9,10}|CY\d{8}[A-Z]|CZ\d{8,10}|DE\d{9}|DK\d{8}|EE\d{9}|EL\d{9}|ES[A-Z0-9]\d{7}[A-Z0-9]|FI\d{8}|FR[A-HJ-NP-Z0-9]{2}\d{9}|GB\d{9}(?:\d{3})?|HR\d{11}|HU\d{8}|IE\d{7}[A-W][A-I]?|IT\d{11}|LT(?:\d{12}|\d{9})|LU\d{8}|LV\d{11}|MT\d{8}|NL\d{9}B\d{2}|PL\d{10}|PT\d{9}|RO\d{6,10}|SE\d{12}|SI\d{8}|SK\d{10}|XI\d{9})$")
        .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
});

/// Trims and checks a candidate; `None` rejects it.
fn validate(kind: Kind, text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = &text[start..end];
    match kind {
        Kind::Iban => iban(text, start, end),
        Kind::CreditCard => {
            let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
            let prefix_ok = matches!(digits.first(), Some(2..=6));
            (prefix_ok && (13..=19).contains(&digits.len()) && luhn(&digits))
                .then_some((start, end))
        }
        Kind::IpAddress => {
            let trimmed = s.trim_end_matches(':');
            let end = start + trimmed.len();
            if trimmed.contains(':') {
                (trimmed.matches(':').count() >= 2
                    && trimmed.parse::<Ipv6Addr>().is_ok()
                    && trimmed.chars().any(|c| c.is_ascii_hexdigit()))
                .then_some((start, end))
            } else {
                trimmed.parse::<Ipv4Addr>().ok().map(|_| (start, end))
            }
        }
        Kind::Phone => {
            let digits = s.chars().filter(char::is_ascii_digit).count();
            let international = s.starts_with('+') || s.starts_with("00");
            let ok = if international {
                (8..=15).contains(&digits)
            } else {
                (9..=12).contains(&digits)
            };
            // A run of one repeated digit is filler, not a number.
            let mut seen = [false; 10];
            for b in s.bytes().filter(u8::is_ascii_digit) {
                seen[usize::from(b - b'0')] = true;
            }
            let varied = seen.iter().filter(|x| **x).count() > 2;
            (ok && varied).then_some((start, end))
        }
        Kind::VatId => {
            let compact: String = s.chars().filter(|c| !matches!(c, ' ' | '.')).collect();
            VAT_COMPACT.is_match(&compact).then_some((start, end))
        }
        Kind::Money => {
            // "14 EUR-Paletten" is a pallet type, not an amount.
            let next = text[end..].chars().next();
            (!next.is_some_and(|c| c == '-' || c.is_alphanumeric())).then_some((start, end))
        }
        Kind::Email => {
            let at = s.find('@')?;
            (at > 0 && !s.starts_with('.')).then_some((start, end))
        }
        _ => Some((start, end)),
    }
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "NL" | "FO" | "GL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "CR" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" => 22,
        "GI" | "IL" | "AE" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        _ => return None,
    })
}

/// Finds the IBAN at the start of a candidate (which may have swallowed following words) and
/// checks it with mod-97.
fn iban(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = &text[start..end];
    let country = s.get(0..2)?;
    let lengths: Vec<usize> = match iban_length(country) {
        Some(n) => vec![n],
        None => (15..=34).rev().collect(),
    };
    for want in lengths {
        let mut compact = String::with_capacity(want);
        let mut byte_end = 0;
        for (i, c) in s.char_indices() {
            if c == ' ' {
                continue;
            }
            compact.push(c);
            byte_end = i + c.len_utf8();
            if compact.len() == want {
                break;
            }
        }
        if compact.len() == want && mod97(&compact) == Some(1) {
            // Not followed directly by more of the same word.
            let next = text[start + byte_end..].chars().next();
            if next.is_none_or(|c| !c.is_ascii_alphanumeric()) {
                return Some((start, start + byte_end));
            }
        }
    }
    None
}

fn mod97(iban: &str) -> Option<u32> {
    let rearranged = iban.get(4..)?.chars().chain(iban.get(..4)?.chars());
    let mut rem: u32 = 0;
    for c in rearranged {
        let v = c.to_digit(36)?;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    Some(rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&str, &'static str)> {
        let d = Detectors::new(None, &["(?-u:\\b)EMP-?\\d{4,6}(?-u:\\b)".to_owned()], &[]).unwrap();
        let mut allowed = None;
        let mut hits = Vec::new();
        d.find(text, &mut allowed, &mut hits);
        hits.iter()
            .map(|h| (&text[h.start..h.end], h.kind.label()))
            .collect()
    }

    #[test]
    fn validated_identifiers() {
        assert_eq!(
            found("IBAN GB82 WEST 1234 5698 7654 32 Thanks"),
            [("GB82 WEST 1234 5698 7654 32", "IBAN")]
        );
        assert_eq!(found("IBAN GB82 WEST 1234 5698 7654 33"), []);
        assert_eq!(
            found("card 4111 1111 1111 1111 ok"),
            [("4111 1111 1111 1111", "CREDIT_CARD")]
        );
        assert!(
            !found("card 4111 1111 1111 1112 ok")
                .iter()
                .any(|(_, k)| *k == "CREDIT_CARD"),
            "not Luhn-valid"
        );
        assert_eq!(
            found("host 192.168.10.24 and 2001:db8::8a2e:370:7334"),
            [
                ("192.168.10.24", "IP_ADDRESS"),
                ("2001:db8::8a2e:370:7334", "IP_ADDRESS")
            ]
        );
        assert_eq!(
            found("USt-IdNr. DE 123456789."),
            [("DE 123456789", "VAT_ID")]
        );
        assert_eq!(
            found("badge EMP-10234 checked"),
            [("EMP-10234", "EMPLOYEE_ID")]
        );
    }

    #[test]
    fn phones_and_money_in_many_conventions() {
        for p in [
            "+1 312 555 0199",
            "(312) 555-0199",
            "020 7946 0958",
            "07700 900123",
            "089/1234567",
            "01 42 68 53 00",
            "06-12345678",
            "0470 12 34 56",
            "612 345 678",
            "347 123 4567",
            "0049 89 1234567",
        ] {
            assert_eq!(found(&format!("call {p} today")), [(p, "PHONE")], "{p}");
        }
        for m in [
            "EUR 12.400,50",
            "$1,200.00",
            "1 200 €",
            "12.5k USD",
            "€ 99",
            "£3,450",
        ] {
            assert_eq!(
                found(&format!("that is {m} for S00042")),
                [(m, "MONEY")],
                "{m}"
            );
        }
        assert_eq!(found("the unit price 14.20 is wrong"), [("14.20", "MONEY")]);
    }

    #[test]
    fn allow_listed_shapes_stay() {
        for text in [
            "S00042 and P00017 via WH/OUT/00123, INV/2026/00077",
            "[BLT-M8] Hex bolt M8, LOT-2026-11-0042, 5000 pcs, 12 pallets",
            "arrives 2026-11-20 06:00:00 or 20.11.2026 at 14:30",
            "tracking 1Z999AA10123456784, container MSCU1234565, 80% received",
        ] {
            assert_eq!(found(text), [], "{text}");
        }
    }

    fn both_ways(d: &Detectors, text: &str) -> (Vec<Hit>, Vec<Hit>) {
        let (mut gated, mut all) = (Vec::new(), Vec::new());
        d.find_gated(text, &mut None, &mut gated, true, &mut Vec::new());
        d.find_gated(text, &mut None, &mut all, false, &mut Vec::new());
        (gated, all)
    }

    static DETECTORS: std::sync::LazyLock<Detectors> = std::sync::LazyLock::new(|| {
        let ids = [
            "(?-u:\\b)EMP-?\\d{4,6}(?-u:\\b)".to_owned(),
            "(?i:employee\\s+(?:id|no\\.?)|personalnummer|badge)\\s*:?\\s*([A-Z0-9][A-Z0-9\\-]{2,11})"
                .to_owned(),
        ];
        let d = Detectors::new(None, &ids, &[]).unwrap();
        assert_eq!(
            d.prefixes.len(),
            2,
            "both policy patterns have literal prefixes"
        );
        d
    });

    fn detectors() -> &'static Detectors {
        &DETECTORS
    }

    /// Whether some string a pattern matches can contain `c` (an ASCII character).
    fn can_match(hir: &regex_syntax::hir::Hir, c: char) -> bool {
        use regex_syntax::hir::{Class, HirKind};
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => false,
            HirKind::Literal(lit) => lit.0.contains(&(c as u8)),
            HirKind::Class(Class::Unicode(cls)) => {
                cls.ranges().iter().any(|r| r.start() <= c && c <= r.end())
            }
            HirKind::Class(Class::Bytes(cls)) => cls
                .ranges()
                .iter()
                .any(|r| r.start() <= c as u8 && c as u8 <= r.end()),
            HirKind::Repetition(r) => can_match(&r.sub, c),
            HirKind::Capture(cap) => can_match(&cap.sub, c),
            HirKind::Concat(hs) | HirKind::Alternation(hs) => hs.iter().any(|h| can_match(h, c)),
        }
    }

    /// What lets `Redactor::text` skip rescanning around a bracketed token: no built-in
    /// detector can match a bracket, so no new match can include one.
    #[test]
    fn no_builtin_detector_matches_a_bracket() {
        for (kind, _, p) in patterns() {
            let hir = regex_syntax::parse(&p).unwrap();
            for c in ['[', ']'] {
                assert!(!can_match(&hir, c), "{kind:?} `{p}` can match {c}");
            }
        }
        // The check itself sees a bracket where there is one.
        assert!(can_match(
            &regex_syntax::parse(r"a(?:b|[x\]])+").unwrap(),
            ']'
        ));
        assert!(can_match(&regex_syntax::parse(r"[^a-z]").unwrap(), '['));
    }

    /// Every labelled string and every fixture text: the gates skip only detectors that would
    /// have found nothing.
    #[test]
    fn gates_never_hide_a_hit_in_the_corpora() {
        let d = detectors();
        let texts = crate::redact::tests::labelled_texts();
        assert!(texts.len() > 800, "corpora not found");
        let mut with_hits = 0;
        for t in &texts {
            let (gated, all) = both_ways(d, t);
            assert_eq!(gated, all, "{t}");
            with_hits += usize::from(!all.is_empty());
        }
        assert!(
            with_hits > 300,
            "the comparison must cover texts with hits: {with_hits}"
        );
    }

    /// The byte pass skips stretches of lower-case letters and the spaces between them; reading
    /// every byte on its own must give the same shape.
    #[test]
    fn skipping_letters_changes_no_shape() {
        let texts = crate::redact::tests::labelled_texts();
        assert!(texts.len() > 800, "corpora not found");
        for t in &texts {
            assert_eq!(Shape::scan(t, true), Shape::scan(t, false), "{t}");
        }
    }

    /// Every street word of the address patterns, in the shapes they take, opens its gate.
    #[test]
    fn every_street_word_opens_its_gate() {
        let d = detectors();
        let mut texts = Vec::new();
        for suffix in [
            "straße", "strasse", "str.", "weg", "gasse", "platz", "allee", "ring", "damm", "ufer",
            "chaussee", "straat", "laan", "plein", "gracht", "kade", "singel", "dijk",
        ] {
            texts.push(format!("Lieferung an Haupt{suffix} 12, 10115 Berlin"));
            texts.push(format!("bezorgen: Molen{suffix} 7a, 1012 AB Amsterdam"));
        }
        for word in [
            "rue",
            "avenue",
            "av.",
            "boulevard",
            "bd",
            "chemin",
            "place",
            "allée",
            "impasse",
            "quai",
            "route",
        ] {
            for word in [word.to_owned(), word.to_uppercase()] {
                texts.push(format!("livrer au 12 {word} de la Paix, 75002 Paris"));
                texts.push(format!("livrer au 12 bis, {word} Victor Hugo"));
                texts.push(format!("livrer au 3ter {word} du Port"));
            }
        }
        for t in &texts {
            let (gated, all) = both_ways(d, t);
            assert_eq!(gated, all, "{t}");
            assert!(
                all.iter().any(|h| h.kind == Kind::PostalAddress),
                "{t}: {all:?}"
            );
        }
    }

    /// (pattern, start, end).
    type Matched = (usize, usize, usize);

    /// A word list as the crate's iterator searches it and as the gates do.
    struct Searches {
        iterator: aho_corasick::AhoCorasick,
        states: aho_corasick::dfa::DFA,
    }

    impl Searches {
        fn new(words: &[&str]) -> Self {
            Self {
                iterator: aho_corasick::AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(words)
                    .unwrap(),
                states: aho_corasick::dfa::DFA::builder()
                    .ascii_case_insensitive(true)
                    .build(words)
                    .unwrap(),
            }
        }

        /// (pattern, start, end) of every overlapping match: (the iterator's, read off).
        fn both(&self, text: &str) -> (Vec<Matched>, Vec<Matched>) {
            let iterated = self
                .iterator
                .find_overlapping_iter(text)
                .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
                .collect();
            let mut read_off = Vec::new();
            overlapping_matches(&self.states, text.as_bytes(), |p, s, e| {
                read_off.push((p, s, e));
                false
            });
            (iterated, read_off)
        }
    }

    /// The gate words and the name finder's cues and titles.
    static SEARCHES: LazyLock<[Searches; 2]> = LazyLock::new(|| {
        let gate: Vec<&str> = GATE_WORDS.iter().map(|(w, _)| *w).collect();
        let cues = crate::redact::names::context_gate_words().0;
        let cues: Vec<&str> = cues.iter().map(String::as_str).collect();
        [Searches::new(&gate), Searches::new(&cues)]
    });

    /// The gate words' and the name cues' matches read off the automaton's states are the
    /// crate iterator's, in the same order, over the labelled corpora; and `found` returning
    /// true stops the search there.
    #[test]
    fn overlapping_matches_are_the_iterators() {
        let mut texts = crate::redact::tests::labelled_texts();
        texts.push("Mr. Mme. st St ST straße STRASSE Dear dear,Hi withMr Anna".to_owned());
        let mut matches = 0;
        for t in &texts {
            for searches in SEARCHES.iter() {
                let (iterated, read_off) = searches.both(t);
                assert_eq!(read_off, iterated, "{t}");
                matches += iterated.len();
            }
        }
        assert!(matches > 3_000, "{matches}");
        let gate = &SEARCHES[0].states;
        let mut seen = 0;
        assert!(overlapping_matches(gate, b"rue st eur", |_, _, _| {
            seen += 1;
            seen == 2
        }));
        assert_eq!(seen, 2);
        assert!(!overlapping_matches(gate, b"nothing here", |_, _, _| true));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Matches read off the states are the iterator's (see
        /// `overlapping_matches_are_the_iterators`) for strings assembled from the words and
        /// from what lies between them.
        #[test]
        fn overlapping_matches_are_iterated_matches(parts in proptest::collection::vec(proptest::sample::select(vec![
            "st", "ST", "St", "r", "rue", "eur", "EUR", "o", "m", "M", "Mr", "mme", "dear", "DEAR", "hi",
            "straße", "STRAẞE", "é", "É", "ß", "\u{212a}", " ", ".", ",", "1", "was", "now", "avec",
            "ave", "boulevard", "de", "Sehr geehrte", "tar", "if", "listino", "preis",
        ]), 0..16)) {
            let text: String = parts.concat();
            for searches in SEARCHES.iter() {
                let (iterated, read_off) = searches.both(&text);
                proptest::prop_assert_eq!(read_off, iterated, "{}", text);
            }
        }

        /// Strings assembled from the pieces detectors and gates look at (separators, currency
        /// signs, street words, case-folding oddities such as the Kelvin sign).
        #[test]
        fn gates_never_hide_a_hit(parts in proptest::collection::vec(proptest::sample::select(vec![
            "+49 ", "(0)", "(+33)", "030", "1234", "567", "89", "0", "00", "1", "(312) ", "555",
            "-0199", "612", "347", "9", "_", " ", ".", ",", "-",
            "/", "'", "\u{a0}", "\u{202f}", "’", "EUR", "eur", ",-", "AED", "ngn", "€", "$", "£", "k", "K", "\u{212a}",
            "\u{17f}", "price", "PRICE", "Preis", "coût", "COÛT", "était", "was ", "Straße", "str.",
            "weg", "Main", " St", " Ave.", "Rue", "rue", "allée", "ALLÉE", "Via", "Roma", "20121",
            "Milano", "DE", "GB82", "WEST", "NL", "BE", "@", "a", "b.example", ":", "::", "fe80",
            "192", "168", "EMP-", "employee id", "EMPLOYEE NO.", "per\u{17f}onalnummer", "PERSONALNUMMER", "badge", "BADGE", "A12",
            "Anna", "\n", "x", "Ω", " bis", "ter", "bd", "Av.", "Quai", "impasse", "laan", "dijk",
            "Hauptstr.", "USD", "JPY", "chf", "Unit Price", "total",
        ]), 0..14)) {
            let d = detectors();
            let text: String = parts.concat();
            let (gated, all) = both_ways(d, &text);
            proptest::prop_assert_eq!(gated, all, "{}", text);
            proptest::prop_assert_eq!(Shape::scan(&text, true), Shape::scan(&text, false), "{}", text);
        }
    }
}
