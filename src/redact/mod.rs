//! Redaction: nothing from a bundle reaches a model before passing through [`Redactor::redact`].
//!
//! Two passes over the bundle. Field rules (JSON paths from the policy file) redact structured
//! Odoo fields by class — pricing, HR, customer PII — and register every redacted value so that
//! it is found again in free text. Then every remaining string runs through the text detectors,
//! the known values and the name finders. Pseudonyms are restored only where a person may see
//! the text (the draft reply, the summary), never in the prompt log.

pub mod detect;
pub mod names;
pub mod path;
pub mod policy;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;
use foldhash::{HashMap, HashMapExt};

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

pub use detect::compile_builtin_patterns;
pub use policy::{Action, Policy, PolicyError};

use detect::{Hit, Kind};
use names::{Folded, Gazetteer, KnownNames};
use path::Step;

/// Where a value was redacted: never the value itself. `start`/`end` are character offsets into
/// the original string at `path` (absent when the whole field was redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<usize>,
    pub class: String,
    pub entity: String,
}

/// Tokens ↔ original values for one bundle. Lives only as long as the request.
#[derive(Debug, Default, Clone)]
pub struct PseudonymMap {
    by_key: HashMap<String, String>,
    /// token → (original value, class)
    by_token: BTreeMap<String, (String, String)>,
    counters: HashMap<String, u32>,
}

/// Token-shaped text the model may have written: `[CUSTOMER_1]`, `[Customer 1]`,
/// `[Credit Card 2]`, `customer_1`, `CUSTOMER-1`. The unbracketed forms need the `_`/`-` joiner so
/// prose like "customer 1 of 3" is left alone.
static TOKENISH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[\s*([a-z]+(?:[_ ][a-z]+)*)[ _\-]?(\d{1,6})\s*\]|(?-u:\b)([a-z]+(?:_[a-z]+)*)[_\-](\d{1,6})(?-u:\b)")
        .unwrap_or_else(|_| never())
});
/// Whether [`TOKENISH`] can match `text`: its bracketed form needs a `[`, its bare form a `_` or
/// `-` right before a digit. Most strings of a model's output have neither, and the regex, whose
/// bare form starts with any letter, would otherwise read all of them.
fn may_hold_token(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr(b'[', b).is_some()
        || b.windows(2)
            .any(|w| matches!(w[0], b'_' | b'-') && w[1].is_ascii_digit())
}

/// The label and the number of a [`TOKENISH`] match, as its groups split it: the number is the
/// trailing run of digits (before `\s*]` in the bracketed form), a separator right before it
/// is not the label's (a label ends in a letter), the label is the rest (after `[\s*`).
fn token_parts(whole: &str) -> (&str, &str) {
    let body = match whole.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .unwrap_or(inner)
            .trim_matches(char::is_whitespace),
        None => whole,
    };
    // What `(?i)[a-z]` matches: ASCII letters, the Kelvin sign and the long s.
    let letter = |c: char| c.is_ascii_alphabetic() || c == '\u{212a}' || c == '\u{17f}';
    let separator = |c: char| matches!(c, ' ' | '_' | '-');
    let digits_at = body
        .char_indices()
        .rev()
        .take_while(|&(_, c)| !letter(c) && !separator(c))
        .last()
        .map_or(body.len(), |(i, _)| i);
    let (rest, n) = body.split_at(digits_at);
    let label = rest.strip_suffix(separator).unwrap_or(rest);
    (label, n)
}

/// Placeholders that can never be restored (masks): fine in internal text, not in a reply.
static MASK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[A-Z][A-Z_]{1,30}\]").unwrap_or_else(|_| never()));

fn never() -> Regex {
    #[allow(clippy::unwrap_used)]
    Regex::new("$^").unwrap()
}

impl PseudonymMap {
    /// The identity of a value: digits for phone-like values, else the trimmed text with case
    /// and inner whitespace normalised. Never the accent-folded form: Jo and Joe stay two people.
    fn key(value: &str) -> String {
        let digits = value.bytes().filter(u8::is_ascii_digit).count();
        let phone_like = digits >= 7
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b" +-./()".contains(&b));
        if phone_like {
            return value.chars().filter(char::is_ascii_digit).collect();
        }
        let mut key = String::with_capacity(value.len());
        for word in value.split_whitespace() {
            if !key.is_empty() {
                key.push(' ');
            }
            key.push_str(word);
        }
        if key.is_ascii() {
            key.make_ascii_lowercase();
            key
        } else {
            key.to_lowercase()
        }
    }

    fn token_for(&mut self, label: &str, value: &str, class: &str) -> String {
        // One hash of the key whether or not it is new.
        let slot = match self.by_key.entry(Self::key(value)) {
            std::collections::hash_map::Entry::Occupied(t) => return t.get().clone(),
            std::collections::hash_map::Entry::Vacant(slot) => slot,
        };
        // The label is allocated once per map, not once per value.
        let n = match self.counters.get_mut(label) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                self.counters.insert(label.to_owned(), 1);
                1
            }
        };
        let mut token = String::with_capacity(label.len() + 5);
        token.push('[');
        token.push_str(label);
        token.push('_');
        let _ = std::fmt::Write::write_fmt(&mut token, format_args!("{n}"));
        token.push(']');
        slot.insert(token.clone());
        self.by_token
            .insert(token.clone(), (value.trim().to_owned(), class.to_owned()));
        token
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Every (token, original value, class), in token order: what is sealed at rest so the
    /// outputs can be restored when a person reads them later.
    pub fn entries(&self) -> Vec<(String, String, String)> {
        self.by_token
            .iter()
            .map(|(t, (v, c))| (t.clone(), v.clone(), c.clone()))
            .collect()
    }

    /// The map back from [`PseudonymMap::entries`].
    pub fn from_entries(entries: impl IntoIterator<Item = (String, String, String)>) -> Self {
        let mut map = Self::default();
        for (token, value, class) in entries {
            if let Some((label, n)) = token
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.rsplit_once('_'))
            {
                let n: u32 = n.parse().unwrap_or(0);
                let counter = map.counters.entry(label.to_owned()).or_insert(0);
                *counter = (*counter).max(n);
            }
            map.by_key.insert(Self::key(&value), token.clone());
            map.by_token.insert(token, (value, class));
        }
        map
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    fn is_label(&self, label: &str) -> bool {
        self.counters.contains_key(label) || KNOWN_LABELS.contains(&label)
    }

    /// Restores every token, including mangled spellings. Errs with the token-like texts that
    /// name no known pseudonym (the model invented or broke them); then nothing is restored.
    pub fn restore_checked(&self, text: &str) -> Result<String, Vec<String>> {
        self.restore_classes(text, None)
    }

    /// Like [`PseudonymMap::restore_checked`], restoring only tokens of the given classes (a
    /// customer reply gets customer data back, never HR data); other tokens are errors.
    pub fn restore_classes(
        &self,
        text: &str,
        classes: Option<&[&str]>,
    ) -> Result<String, Vec<String>> {
        if !may_hold_token(text) {
            return Ok(text.to_owned());
        }
        let mut unresolved = Vec::new();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        // Whole matches only: the capture search that splits a match into its groups cost more
        // than the rest of a restore, and `token_parts` splits it the same way.
        for m in TOKENISH.find_iter(text) {
            out.push_str(&text[last..m.start()]);
            last = m.end();
            let whole = m.as_str();
            let (label, n) = token_parts(whole);
            let label = label.to_ascii_uppercase().replace(' ', "_");
            if !self.is_label(&label) {
                // "[Step 1]" is prose, not a token.
                out.push_str(whole);
                continue;
            }
            match self.by_token.get(&format!("[{label}_{n}]")) {
                Some((original, class)) if classes.is_none_or(|c| c.contains(&class.as_str())) => {
                    out.push_str(original)
                }
                _ => {
                    unresolved.push(whole.to_owned());
                    out.push_str(whole);
                }
            }
        }
        out.push_str(&text[last..]);
        if unresolved.is_empty() {
            Ok(out)
        } else {
            Err(unresolved)
        }
    }

    /// [`PseudonymMap::restore_classes`] over every string of a JSON value; the value is only
    /// changed when every token in it resolves.
    pub fn restore_value(
        &self,
        value: &Value,
        classes: Option<&[&str]>,
    ) -> Result<Value, Vec<String>> {
        let mut out = value.clone();
        let mut problems = Vec::new();
        restore_in(self, &mut out, classes, &mut problems);
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

fn restore_in(
    map: &PseudonymMap,
    v: &mut Value,
    classes: Option<&[&str]>,
    problems: &mut Vec<String>,
) {
    match v {
        Value::String(s) => match map.restore_classes(s, classes) {
            Ok(r) => *s = r,
            Err(p) => problems.extend(p),
        },
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| restore_in(map, i, classes, problems)),
        Value::Object(m) => m
            .values_mut()
            .for_each(|i| restore_in(map, i, classes, problems)),
        _ => {}
    }
}

/// Mask placeholders (`[PRICE]`, `[REDACTED]`) left in text meant for a customer.
pub fn leftover_masks(text: &str) -> Vec<String> {
    MASK.find_iter(text)
        .map(|m| m.as_str().to_owned())
        .filter(|m| !m.chars().any(|c| c.is_ascii_digit()))
        .collect()
}

/// Every placeholder in text meant for a customer: masks (`[PRICE]`) and tokens (`[CUSTOMER_9]`)
/// that restore did not replace.
pub fn placeholders_in(text: &str) -> Vec<String> {
    static TOKEN: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[[A-Z_][A-Z0-9_]{0,63}\]").unwrap_or_else(|_| never()));
    TOKEN
        .find_iter(text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

const KNOWN_LABELS: &[&str] = &[
    "CUSTOMER",
    "CREDIT_CARD",
    "ADDRESS",
    "PARTNER",
    "PERSON",
    "EMPLOYEE",
    "EMPLOYEE_ID",
    "EMAIL",
    "PHONE",
    "IBAN",
    "CREDIT_CARD",
    "VAT",
    "VAT_ID",
    "IP_ADDRESS",
    "POSTAL_ADDRESS",
    "MONEY",
    "SUPPLIER",
    "CONTACT",
];

/// Entities whose values are names, found again in free text in all their spellings.
const NAME_ENTITIES: &[&str] = &[
    "CUSTOMER", "PARTNER", "PERSON", "EMPLOYEE", "SUPPLIER", "CONTACT",
];

/// A bundle after redaction: what templates and providers see.
#[derive(Debug, Clone)]
pub struct Redacted {
    pub value: Value,
    /// Redacted values per class, every class of the policy present.
    pub counts: BTreeMap<String, u32>,
    pub pseudonyms: PseudonymMap,
    pub findings: Vec<Finding>,
}

/// The policies in `redaction/`, by name.
#[derive(Debug, Clone)]
pub struct Policies {
    by_name: BTreeMap<String, Arc<Redactor>>,
    default: String,
}

impl Policies {
    /// Loads every `*.toml` in `dir` (and the name gazetteer in `dir/names/`).
    pub fn load(dir: &Path, default: &str) -> Result<Self, PolicyError> {
        if !dir.is_dir() {
            return Err(PolicyError::MissingDir(dir.to_owned()));
        }
        let gazetteer =
            Arc::new(
                Gazetteer::load(&dir.join("names")).map_err(|source| PolicyError::Io {
                    file: dir.join("names"),
                    source,
                })?,
            );
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|source| PolicyError::Io {
                file: dir.to_owned(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut by_name = BTreeMap::new();
        for file in files {
            let policy = Policy::load(&file)?;
            if let Some(other) = by_name.get(&policy.name) {
                let other: &Arc<Redactor> = other;
                return Err(PolicyError::Invalid {
                    file: file.clone(),
                    line: 1,
                    reason: format!(
                        "policy name `{}` is already used by {}",
                        policy.name,
                        other.policy.file.display()
                    ),
                });
            }
            by_name.insert(
                policy.name.clone(),
                Arc::new(Redactor::new(policy, Arc::clone(&gazetteer))),
            );
        }
        let this = Self {
            by_name,
            default: default.to_owned(),
        };
        this.get(None)?;
        Ok(this)
    }

    /// The named policy, or the configured default.
    pub fn get(&self, name: Option<&str>) -> Result<&Arc<Redactor>, PolicyError> {
        let name = name.unwrap_or(&self.default);
        self.by_name.get(name).ok_or_else(|| {
            PolicyError::Unknown(
                name.to_owned(),
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", "),
            )
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }
}

/// One policy, compiled.
#[derive(Debug)]
pub struct Redactor {
    policy: Policy,
    gazetteer: Arc<Gazetteer>,
    /// Rules by their path's anchor (see [`path::PathPattern::anchor`]): `anchored[d]` maps
    /// the field name at distance `d` from a location's end to the rules that require it.
    anchored: Vec<HashMap<String, Vec<usize>>>,
    /// Rules without an anchor, tried on every node.
    unkeyed: Vec<usize>,
    /// Rescan every redacted string, quiet or not: the reference the skip is tested against.
    rescan_always: bool,
}

/// Top-level fields that are identifiers or control, not content.
const NOT_CONTENT: &[&str] = &[
    "event_id",
    "event_type",
    "occurred_at",
    "tasks",
    "locale",
    "prompt_versions",
    "write_back",
    "policy",
];

/// What happens to a value a rule (or a money-named field) selected.
struct Treatment<'a> {
    class: &'a str,
    entity: &'a str,
    action: Action,
}

impl policy::Rule {
    fn treatment(&self) -> Treatment<'_> {
        Treatment {
            class: &self.class,
            entity: &self.entity,
            action: self.action,
        }
    }
}

/// A redacted value that may recur in free text, and what replaces it there.
struct Target {
    replacement: String,
    class: String,
    entity: String,
}

#[derive(Default)]
struct State {
    map: PseudonymMap,
    counts: BTreeMap<String, u32>,
    findings: Vec<Finding>,
    known: names::Spellings,
    targets: Vec<Target>,
    /// Targets by replacement: a value redacted twice (a partner named in two records) is one
    /// target, so its spellings do not look shared by two values (see [`names::AMBIGUOUS`]).
    target_of: HashMap<String, Vec<usize>>,
    /// Values whose spellings are known already, with their target and how they were spelt.
    remembered: HashMap<String, Vec<(usize, Spelt)>>,
    /// Known amounts in cents → target.
    amounts: HashMap<i64, usize>,
    currency: String,
}

/// How a remembered value is spelt out (see [`names::variants`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelt {
    AsWritten,
    Company,
    Person,
}

impl State {
    fn count(&mut self, class: &str) {
        match self.counts.get_mut(class) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(class.to_owned(), 1);
            }
        }
    }

    fn target(&mut self, replacement: &str, class: &str, entity: &str) -> usize {
        let same = |t: &Target| t.class == class && t.entity == entity;
        if let Some(&idx) = self
            .target_of
            .get(replacement)
            .and_then(|ids| ids.iter().find(|&&i| same(&self.targets[i])))
        {
            return idx;
        }
        self.targets.push(Target {
            replacement: replacement.to_owned(),
            class: class.to_owned(),
            entity: entity.to_owned(),
        });
        let idx = self.targets.len() - 1;
        self.target_of
            .entry(replacement.to_owned())
            .or_default()
            .push(idx);
        idx
    }

    /// An amount is found again in text by value, whatever its digit grouping.
    fn remember_amount(&mut self, original: &str, replacement: &str, class: &str, entity: &str) {
        if let Some(cents) = amount_key(original) {
            let idx = self.target(replacement, class, entity);
            self.amounts.entry(cents).or_insert(idx);
        }
    }

    /// Registers the spellings of `original` (once per value, target and way of spelling).
    fn remember(
        &mut self,
        original: &str,
        spelt: Spelt,
        replacement: &str,
        class: &str,
        entity: &str,
    ) {
        let idx = self.target(replacement, class, entity);
        if self
            .remembered
            .get(original)
            .is_some_and(|seen| seen.contains(&(idx, spelt)))
        {
            return;
        }
        self.remembered
            .entry(original.to_owned())
            .or_default()
            .push((idx, spelt));
        match spelt {
            Spelt::AsWritten => self.known.push_folded(original, idx),
            Spelt::Company => self.known.push_variants(original, false, idx),
            Spelt::Person => self.known.push_variants(original, true, idx),
        }
    }
}

/// A span of text to replace, from whichever finder saw it.
#[derive(Debug, Clone, Copy)]
enum Source {
    Detector(Kind),
    Known(usize),
}

impl Redactor {
    pub fn new(policy: Policy, gazetteer: Arc<Gazetteer>) -> Self {
        let mut anchored: Vec<HashMap<String, Vec<usize>>> = Vec::new();
        let mut unkeyed = Vec::new();
        for (i, rule) in policy.rules.iter().enumerate() {
            match rule.path.anchor() {
                Some((k, back)) => {
                    if anchored.len() <= back {
                        anchored.resize_with(back + 1, HashMap::new);
                    }
                    anchored[back].entry(k.to_owned()).or_default().push(i);
                }
                None => unkeyed.push(i),
            }
        }
        Self {
            policy,
            gazetteer,
            anchored,
            unkeyed,
            rescan_always: false,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Redacts a whole bundle document (the JSON the caller sent).
    pub fn redact(&self, bundle: &Value) -> Redacted {
        self.redact_owned(bundle.clone())
    }

    /// [`Redactor::redact`] of a document the caller no longer needs: it is redacted in place,
    /// not copied first (the service's path: a request's document is dropped once redacted).
    pub fn redact_owned(&self, bundle: Value) -> Redacted {
        let mut out = bundle;
        let mut state = State {
            currency: currency_of(&out),
            ..State::default()
        };
        // The free-text strings, taken out of the document (and put back redacted) with where
        // they were.
        let mut texts: Vec<(Vec<Step>, String)> = Vec::new();
        let mut steps = Vec::new();
        self.structured(&mut out, &mut steps, &mut state, &mut texts);
        // The allow-listed spans the name finder computed for a string, handed on to its
        // redaction (the string does not change in between).
        let allowed: Vec<Option<Vec<(usize, usize)>>> = texts
            .iter()
            .map(|(_, s)| self.learn_free_names(s, &mut state))
            .collect();
        let known = KnownNames::new(std::mem::take(&mut state.known));
        for ((p, original), allowed) in texts.into_iter().zip(allowed) {
            let redacted = self.text(&original, At::Steps(&p), &known, &mut state, allowed);
            if let Some(Value::String(s)) = get_mut(&mut out, &p) {
                *s = redacted;
            }
        }
        let mut counts: BTreeMap<String, u32> =
            self.policy.classes.keys().map(|c| (c.clone(), 0)).collect();
        for (c, n) in state.counts {
            counts.insert(c, n);
        }
        Redacted {
            value: out,
            counts,
            pseudonyms: state.map,
            findings: state.findings,
        }
    }

    /// Redacts one free-text string given values known from structured fields
    /// (`(value, is_person)`): for the labelled corpus and the dry-run tools.
    pub fn redact_text(&self, text: &str, known: &[(&str, bool)]) -> (String, Vec<Finding>) {
        let mut state = State::default();
        for (value, person) in known {
            let token = state.map.token_for(
                if *person { "PERSON" } else { "CUSTOMER" },
                value,
                "customer_pii",
            );
            let spelt = if *person {
                Spelt::Person
            } else {
                Spelt::Company
            };
            state.remember(value, spelt, &token, "customer_pii", "PERSON");
        }
        let allowed = self.learn_free_names(text, &mut state);
        let known = KnownNames::new(std::mem::take(&mut state.known));
        let out = self.text(text, At::Text("$"), &known, &mut state, allowed);
        (out, state.findings)
    }

    fn rule_for(&self, steps: &[Step]) -> Option<&policy::Rule> {
        let keyed = self.anchored.iter().enumerate().flat_map(|(back, rules)| {
            let step = steps.len().checked_sub(back + 1).map(|at| &steps[at]);
            match step {
                Some(Step::Key(k)) => rules.get(k).map(Vec::as_slice).unwrap_or(&[]),
                _ => &[],
            }
        });
        // Earliest rule in file order wins.
        let mut best: Option<usize> = None;
        for &i in keyed.chain(self.unkeyed.iter()) {
            if best.is_some_and(|b| b < i) {
                continue;
            }
            if self.policy.rules[i].path.matches(steps) {
                best = Some(i);
            }
        }
        best.map(|i| &self.policy.rules[i])
    }

    fn structured(
        &self,
        v: &mut Value,
        steps: &mut Vec<Step>,
        state: &mut State,
        text: &mut Vec<(Vec<Step>, String)>,
    ) {
        match v {
            Value::Object(map) => {
                // Field names are identifiers; anything else ("Jo Rivera's order") is text.
                if map.keys().any(|k| !is_identifier(k)) {
                    let none = KnownNames::new(names::Spellings::default());
                    let parent = path::render(steps);
                    let old = std::mem::take(map);
                    for (k, child) in old {
                        let key = if is_identifier(&k) {
                            k
                        } else {
                            let at = format!("{parent} (field name)");
                            self.text(&k, At::Text(&at), &none, state, None)
                        };
                        map.insert(key, child);
                    }
                }
                let mut dropped = Vec::new();
                for (key, child) in map.iter_mut() {
                    if steps.is_empty() && NOT_CONTENT.contains(&key.as_str()) {
                        continue;
                    }
                    steps.push(Step::Key(key.clone()));
                    if !is_control(steps) && self.node(child, steps, state, text) {
                        dropped.push(key.clone());
                    }
                    steps.pop();
                }
                for k in dropped {
                    map.remove(&k);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    steps.push(Step::Index(i));
                    if self.node(child, steps, state, text) {
                        *child = Value::Null;
                    }
                    steps.pop();
                }
            }
            _ => {}
        }
    }

    /// Applies the first matching rule, or descends. Returns true when the node is dropped.
    fn node(
        &self,
        v: &mut Value,
        steps: &mut Vec<Step>,
        state: &mut State,
        text: &mut Vec<(Vec<Step>, String)>,
    ) -> bool {
        if let Some(rule) = self.rule_for(steps)
            && rule.action != Action::Keep
        {
            if is_empty(v) {
                return false;
            }
            let p = path::render(steps);
            return self.apply(v, &rule.treatment(), &p, state);
        }
        match v {
            Value::String(s) => text.push((steps.clone(), std::mem::take(s))),
            Value::Object(_) | Value::Array(_) => self.structured(v, steps, state, text),
            Value::Number(_) => {
                // A number no rule names, under a key that says money: pricing all the same.
                if let Some(Step::Key(k)) = steps.last()
                    && let Some(t) = self.money_like(k)
                {
                    let p = path::render(steps);
                    return self.apply(v, &t, &p, state);
                }
            }
            _ => {}
        }
        false
    }

    fn money_like(&self, key: &str) -> Option<Treatment<'static>> {
        let (class, entity) = money_key(key)?;
        let action = if class == "hr" {
            Action::Mask
        } else {
            self.policy.class_action(class)
        };
        Some(Treatment {
            class,
            entity,
            action,
        })
    }

    fn apply(&self, v: &mut Value, t: &Treatment<'_>, p: &str, state: &mut State) -> bool {
        let (class, entity) = (t.class, t.entity);
        if t.action == Action::Drop {
            // The dropped value (or record) may still be quoted in free text.
            self.remember_leaves(v, None, "[REDACTED]", class, entity, state);
            state.count(class);
            state.findings.push(whole_field(p, class, entity));
            return true;
        }
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if !is_empty(item) && self.apply(item, t, &format!("{p}[{i}]"), state) {
                        *item = Value::Null;
                    }
                }
                return false;
            }
            Value::Object(map) => {
                if t.action == Action::Mask {
                    let mask = format!("[{entity}]");
                    self.remember_leaves(v, None, &mask, class, entity, state);
                    *v = Value::String(mask);
                    state.count(class);
                    state.findings.push(whole_field(p, class, entity));
                    return false;
                }
                for (k, item) in map.iter_mut() {
                    if !is_empty(item) {
                        self.apply(item, t, &format!("{p}.{k}"), state);
                    }
                }
                return false;
            }
            _ => {}
        }
        let original = match v {
            Value::String(s) if already_redacted(s) => return false,
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return false,
        };
        let chars = original.chars().count();
        let replacement = match t.action {
            Action::Pseudonymize => state.map.token_for(entity, &original, class),
            Action::Generalize => generalize(
                entity,
                v.as_f64().or_else(|| parse_amount(&original)),
                &state.currency,
            )
            .unwrap_or_else(|| format!("[{entity}]")),
            _ => format!("[{entity}]"),
        };
        // The same value in free text gets the same replacement.
        self.remember_scalar(
            &original,
            v.is_number(),
            None,
            &replacement,
            class,
            entity,
            state,
        );
        state.count(class);
        state.findings.push(Finding {
            path: p.to_owned(),
            start: v.is_string().then_some(0),
            end: v.is_string().then_some(chars),
            class: class.to_owned(),
            entity: entity.to_owned(),
        });
        *v = Value::String(replacement);
        false
    }

    /// Names only free text reveals ("Geachte heer Hendriks") become known values before any
    /// string is replaced, so that a later bare "Hendriks" elsewhere in the bundle is caught too.
    /// Returns the text's allow-listed spans when it had to compute them.
    fn learn_free_names(&self, text: &str, state: &mut State) -> Option<Vec<(usize, usize)>> {
        let class = self.policy.detector_class(Kind::Person);
        if self.policy.class_action(class) == Action::Keep || text.len() < 3 {
            return None;
        }
        let gazetteer = if self.policy.person_gazetteer {
            &*self.gazetteer
        } else {
            &EMPTY_GAZETTEER
        };
        let mut free = Vec::new();
        names::find_free_names(text, gazetteer, &mut free);
        if free.is_empty() {
            return None;
        }
        let mut allowed = Vec::new();
        self.policy.detectors.allowed(text, &mut allowed);
        for (s, e) in free {
            if allowed.iter().any(|&(a, b)| s < b && a < e) {
                continue;
            }
            let name = &text[s..e];
            let (class, entity, replacement) = self.replace_detected(Kind::Person, name, state);
            state.remember(name, Spelt::Person, &replacement, &class, &entity);
        }
        Some(allowed)
    }

    /// Registers a redacted value so that free text quoting it gets the same replacement:
    /// names in all their spellings, amounts by value, anything else as written (folded).
    #[allow(clippy::too_many_arguments)]
    fn remember_scalar(
        &self,
        original: &str,
        is_number: bool,
        key: Option<&str>,
        replacement: &str,
        class: &str,
        entity: &str,
        state: &mut State,
    ) {
        let name_like = NAME_ENTITIES.contains(&entity) || key == Some("name");
        if name_like {
            // Companies and private customers share partner fields: a value that starts with a
            // known first name is treated as a person (surname and first name alone count too).
            let person = !matches!(entity, "CUSTOMER" | "PARTNER" | "SUPPLIER")
                || self.gazetteer.starts_with_first_name(original);
            let spelt = if person {
                Spelt::Person
            } else {
                Spelt::Company
            };
            state.remember(original, spelt, replacement, class, entity);
        } else {
            state.remember(original, Spelt::AsWritten, replacement, class, entity);
        }
        if is_number || original.chars().any(|c| c.is_ascii_digit()) {
            state.remember_amount(original, replacement, class, entity);
        }
    }

    /// [`Redactor::remember_scalar`] for every value inside a masked or dropped record.
    fn remember_leaves(
        &self,
        v: &Value,
        key: Option<&str>,
        replacement: &str,
        class: &str,
        entity: &str,
        state: &mut State,
    ) {
        match v {
            // Identifying values only: a department or job title quoted elsewhere is not a leak.
            Value::String(s)
                if !s.trim().is_empty() && !already_redacted(s) && identifying(key) =>
            {
                self.remember_scalar(s, false, key, replacement, class, entity, state)
            }
            Value::Number(n) => {
                self.remember_scalar(&n.to_string(), true, key, replacement, class, entity, state)
            }
            Value::Array(items) => items
                .iter()
                .for_each(|i| self.remember_leaves(i, key, replacement, class, entity, state)),
            Value::Object(map) => map.iter().for_each(|(k, i)| {
                self.remember_leaves(i, Some(k), replacement, class, entity, state)
            }),
            _ => {}
        }
    }

    /// Redacts one free-text string. `allowed`: its allow-listed spans, when already known.
    fn text(
        &self,
        text: &str,
        at: At<'_>,
        known: &KnownNames,
        state: &mut State,
        mut allowed: Option<Vec<(usize, usize)>>,
    ) -> String {
        // Most strings have no finding: their path is rendered only for the first one.
        let mut rendered: Option<String> = None;
        let mut p = || rendered.get_or_insert_with(|| at.render()).clone();
        if text.trim().chars().count() < 2 || is_odoo_timestamp(text) {
            return text.to_owned();
        }
        let detectors = &self.policy.detectors;
        let mut hits: Vec<Hit> = Vec::new();
        let mut shadows = Vec::new();
        let amounts = detectors.find_shadowed(text, &mut allowed, &mut hits, &mut shadows);
        let mut spans: Vec<(usize, usize, Source)> = hits
            .iter()
            .map(|h| (h.start, h.end, Source::Detector(h.kind)))
            .collect();
        if !state.amounts.is_empty() && text.bytes().any(|b| b.is_ascii_digit()) {
            for m in NUMBER.find_iter(text) {
                if let Some(&t) = amount_key(m.as_str()).and_then(|k| state.amounts.get(&k)) {
                    if allowed.is_none() {
                        let mut spans = Vec::new();
                        detectors.allowed(text, &mut spans);
                        allowed = Some(spans);
                    }
                    let inside_allowed = allowed
                        .as_deref()
                        .unwrap_or(&[])
                        .iter()
                        .any(|&(a, b)| a <= m.start() && m.end() <= b);
                    if !inside_allowed {
                        spans.push((m.start(), m.end(), Source::Known(t)));
                    }
                }
            }
        }
        if !known.is_empty() {
            let folded: Folded = names::fold(text);
            let mut known_hits = Vec::new();
            known.find(text, &folded, &mut known_hits);
            spans.extend(
                known_hits
                    .into_iter()
                    .map(|(s, e, t)| (s, e, Source::Known(t))),
            );
        }
        // Names only free text reveals were learnt for the whole bundle before this pass
        // (`learn_free_names`), so the known-value matcher above already found them.
        if spans.is_empty() {
            return text.to_owned();
        }
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        // Merge overlaps; the stronger source names the span (detector > known > free name).
        let mut merged: Vec<(usize, usize, Source)> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(last) if s.0 < last.1 => {
                    last.1 = last.1.max(s.1);
                    if rank(s.2) < rank(last.2) {
                        last.2 = s.2;
                    }
                }
                _ => merged.push(s),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        // Whether some replacement may have changed what a detector sees (see
        // `quiet_replacement`); only then is the result scanned again. Shadows are swept in
        // order of their start: `reach` is the furthest end of those starting by a span's end.
        let mut loud = self.rescan_always || (amounts.decimal && amounts.pricing_noun);
        shadows.sort_unstable();
        let (mut next_shadow, mut reach) = (0, None);
        // Characters before `at`: spans come in order, so offsets are counted on from the last.
        let mut chars_before_at = 0;
        for (s, e, source) in merged {
            out.push_str(&text[at..s]);
            let original = &text[s..e];
            let (class, entity, replacement) = match source {
                Source::Known(names::AMBIGUOUS) => {
                    self.replace_detected(Kind::Person, original, state)
                }
                Source::Known(t) => {
                    let t = &state.targets[t];
                    (t.class.clone(), t.entity.clone(), t.replacement.clone())
                }
                Source::Detector(kind) => self.replace_detected(kind, original, state),
            };
            state.count(&class);
            let start = chars_before_at + text[at..s].chars().count();
            let end = start + original.chars().count();
            chars_before_at = end;
            state.findings.push(Finding {
                path: p(),
                start: Some(start),
                end: Some(end),
                class,
                entity,
            });
            while let Some(&(a, b)) = shadows.get(next_shadow)
                && a <= e
            {
                reach = reach.max(Some(b));
                next_shadow += 1;
            }
            let touches_shadow = reach.is_some_and(|b| s <= b);
            loud = loud
                || (original != replacement
                    && (touches_shadow
                        || !quiet_replacement(&out, &replacement, &text[e..])
                        || (amounts.decimal && detect::names_a_price(&replacement))));
            push_replacement(&mut out, original, &replacement);
            at = e;
        }
        out.push_str(&text[at..]);
        if !loud && !detectors.own_patterns_match(&out) {
            return out;
        }
        // A replacement can expose a neighbour that a word boundary hid ("…example901-555-0188"
        // once the address is a token), or join its neighbours into a new shape (a band after
        // "a@a." reads as an e-mail domain): scan the result again until nothing changes, so
        // what the model sees is what a second redaction would leave (offsets of such late
        // finds are not recorded). The number of passes is capped.
        for _ in 0..LATE_PASSES {
            let mut late: Option<Vec<(usize, usize)>> = None;
            let mut again: Vec<Hit> = Vec::new();
            detectors.find(&out, &mut late, &mut again);
            let mut next = String::with_capacity(out.len());
            let mut at = 0;
            let mut changed = false;
            for h in again {
                next.push_str(&out[at..h.start]);
                let (class, entity, replacement) =
                    self.replace_detected(h.kind, &out[h.start..h.end], state);
                // What the policy keeps was counted when first found.
                if replacement == out[h.start..h.end] {
                    next.push_str(&replacement);
                    at = h.end;
                    continue;
                }
                changed = true;
                state.count(&class);
                state.findings.push(Finding {
                    path: p(),
                    start: None,
                    end: None,
                    class,
                    entity,
                });
                push_replacement(&mut next, &out[h.start..h.end], &replacement);
                at = h.end;
            }
            if !changed {
                return out;
            }
            next.push_str(&out[at..]);
            out = next;
        }
        out
    }

    fn replace_detected(
        &self,
        kind: Kind,
        original: &str,
        state: &mut State,
    ) -> (String, String, String) {
        let class = self.policy.detector_class(kind).to_owned();
        let label = kind.label();
        let replacement = match self.policy.class_action(&class) {
            Action::Pseudonymize => state.map.token_for(label, original, &class),
            Action::Generalize => generalize(label, parse_amount(original), &state.currency)
                .unwrap_or_else(|| format!("[{label}]")),
            Action::Drop => "[REDACTED]".to_owned(),
            Action::Keep => original.to_owned(),
            Action::Mask => format!("[{label}]"),
        };
        (class, label.to_owned(), replacement)
    }
}

/// Where a string sits, for its findings: path steps rendered only when needed.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    Steps(&'a [Step]),
    Text(&'a str),
}

impl At<'_> {
    fn render(self) -> String {
        match self {
            At::Steps(steps) => path::render(steps),
            At::Text(t) => t.to_owned(),
        }
    }
}

/// Appends a replacement. An amount band ("under 1k") is set off from a word it would be glued
/// to ("G0$" → "G under 1k"): a band is recognised only where a word starts, so that "Rover
/// 100k EUR" is not read as the band "over 100k EUR". What a policy keeps stays as written.
fn push_replacement(out: &mut String, original: &str, replacement: &str) {
    let glued = original != replacement
        && out
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if glued && replacement.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.push(' ');
    }
    out.push_str(replacement);
}

/// Rescans of a redacted string (see the end of `Redactor::text`).
const LATE_PASSES: usize = 4;

/// Whether a `replacement` between `before` (the redacted text so far) and `after` (the
/// original text after it) leaves nothing new for the built-in detectors: a bracketed token or
/// mask (no built-in detector pattern can match a bracket: `detect::tests::
/// no_builtin_detector_matches_a_bracket`) with whitespace or opening punctuation before it and
/// whitespace, or closing punctuation and whitespace, after it — no built-in pattern ends in
/// the former or starts with the latter, so a word boundary next to the replacement reads as
/// before. `Redactor::text` also counts as loud a replacement that touches a shadow (a
/// rejected match, a trimmed tail or a vetoing span: `Detectors::find_shadowed`), one that is
/// itself a pricing noun, any replacement in a text where the
/// pricing-sentence rule may apply, and runs the policy's own patterns on the result. The
/// rescan is skipped only when nothing is loud; `tests::quiet_replacements_need_no_rescan` and
/// a proptest compare that with rescanning every string.
fn quiet_replacement(before: &str, replacement: &str, after: &str) -> bool {
    let bracketed = replacement.starts_with('[') && replacement.ends_with(']');
    let open = before
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '"' | '«' | '“' | '„'));
    let mut rest = after.chars();
    let close = match rest.next() {
        None => true,
        Some(c) if c.is_whitespace() => true,
        Some('.' | ',' | ';' | '!' | '?' | ')' | '"' | '»' | '”') => {
            rest.next().is_none_or(char::is_whitespace)
        }
        Some(_) => false,
    };
    bracketed && open && close
}

static EMPTY_GAZETTEER: LazyLock<Gazetteer> = LazyLock::new(Gazetteer::default);

fn rank(s: Source) -> u8 {
    match s {
        Source::Detector(_) => 0,
        Source::Known(_) => 1,
    }
}

/// Words that make a field name say money, matched anywhere in it, ASCII-case-insensitively.
/// The first six have meanings of their own (bits below); any but percent, pct and discount
/// makes an amount.
const MONEY_KEY_WORDS: [&str; 15] = [
    "margin", "percent", "pct", "discount", "wage", "salary", "price", "amount", "cost", "credit",
    "fee", "total", "revenue", "value", "budget",
];
const MARGIN_WORD: u16 = 1;
const PERCENT_WORDS: u16 = 1 << 1 | 1 << 2;
const DISCOUNT_WORD: u16 = 1 << 3;
const HR_WORDS: u16 = 1 << 4 | 1 << 5;

/// (class, entity) of a number under a field name that says money ("margin_percent",
/// "x_freight_cost"), else `None`. Every number without a rule asks, so the name is read once
/// for all the words.
fn money_key(key: &str) -> Option<(&'static str, &'static str)> {
    static WORDS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(MONEY_KEY_WORDS)
            .ok()
    });
    let found = match &*WORDS {
        Some(ac) => ac
            .find_overlapping_iter(key)
            .fold(0u16, |f, m| f | 1 << m.pattern().as_usize()),
        None => {
            let key = key.to_ascii_lowercase();
            MONEY_KEY_WORDS
                .iter()
                .enumerate()
                .filter(|(_, w)| key.contains(*w))
                .fold(0u16, |f, (i, _)| f | 1 << i)
        }
    };
    let entity = if found & MARGIN_WORD != 0 && found & PERCENT_WORDS != 0 {
        "MARGIN"
    } else if found & DISCOUNT_WORD != 0 {
        "DISCOUNT"
    } else if found & !(PERCENT_WORDS | DISCOUNT_WORD) != 0 {
        "AMOUNT"
    } else {
        return None;
    };
    let class = if found & HR_WORDS != 0 {
        "hr"
    } else {
        "pricing"
    };
    Some((class, entity))
}

/// A finding for a whole field (no character offsets).
fn whole_field(p: &str, class: &str, entity: &str) -> Finding {
    Finding {
        path: p.to_owned(),
        start: None,
        end: None,
        class: class.to_owned(),
        entity: entity.to_owned(),
    }
}

/// Keys whose values identify a person or carry money, inside a masked or dropped record.
fn identifying(key: Option<&str>) -> bool {
    let Some(k) = key else { return true };
    let k = k.to_ascii_lowercase();
    [
        "name",
        "email",
        "phone",
        "mobile",
        "street",
        "vat",
        "acc_number",
        "wage",
        "salary",
        "identification",
        "passport",
        "birthday",
        "ssn",
    ]
    .iter()
    .any(|w| k.contains(w))
}

fn is_identifier(k: &str) -> bool {
    // Bytes: a character beyond ASCII fails either way.
    k.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Control fields inside content: message roles and dates, the reply language, the source ids.
fn is_control(steps: &[Step]) -> bool {
    match steps {
        [Step::Key(a), Step::Index(_), Step::Key(b)] if a == "messages" => {
            b == "role" || b == "sent_at"
        }
        [Step::Key(a), Step::Key(b)] if a == "reply_to" => b == "lang",
        [Step::Key(a), Step::Key(b)] if a == "source" => b != "name",
        _ => false,
    }
}

fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
        || matches!(v, Value::String(s) if s.trim().is_empty())
}

fn get_mut<'a>(v: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in steps {
        cur = match s {
            Step::Key(k) => cur.get_mut(k.as_str())?,
            Step::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

/// An ISO code ("EUR") or a symbol ("€"): anything else is not used in bands.
fn is_currency(s: &str) -> bool {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()))
        || matches!(s, "€" | "$" | "£" | "¥" | "₹")
}

/// The bundle's currency: the first Odoo `currency_id` many2one (or `currency` string) found.
fn currency_of(v: &Value) -> String {
    find_currency(v).map(str::to_owned).unwrap_or_default()
}

fn find_currency(v: &Value) -> Option<&str> {
    match v {
        Value::Object(map) => {
            // One look at each key (most objects have neither), `currency_id` first.
            let mut plain = None;
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("currency_id", Value::Array(pair)) => {
                        if let Some(Value::String(code)) = pair.get(1)
                            && is_currency(code)
                        {
                            return Some(code);
                        }
                    }
                    ("currency", Value::String(code)) if is_currency(code) => plain = Some(code),
                    _ => {}
                }
            }
            plain
                .map(String::as_str)
                .or_else(|| map.values().find_map(find_currency))
        }
        Value::Array(items) => items.iter().find_map(find_currency),
        _ => None,
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`, the commonest strings in Odoo records.
fn is_odoo_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = |pattern: &[u8]| {
        b.len() == pattern.len()
            && b.iter().zip(pattern).all(|(c, p)| {
                if *p == b'9' {
                    c.is_ascii_digit()
                } else {
                    c == p
                }
            })
    };
    shape(b"9999-99-99") || shape(b"9999-99-99 99:99:99")
}

/// Output of an earlier redaction (a token, a mask or a band): redacting twice changes nothing.
fn already_redacted(s: &str) -> bool {
    static SHAPE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:\[[A-Z][A-Z_]*(?:_\d+)?\]|(?:under 1k|1k–10k|10k–100k|over 100k)(?: \S{1,3})?|(?:low|normal|high) (?:margin|discount))$")
            .unwrap_or_else(|_| never())
    });
    SHAPE.is_match(s)
}

/// Reads "12.400,50", "$1,200.00", "1 200 €", "12.5k USD", "0.12" as a number.
pub fn parse_amount(s: &str) -> Option<f64> {
    static MULT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\d[ \x{a0}\x{202f}]?([kKmM])(?:$|[^A-Za-z])").unwrap_or_else(|_| never())
    });
    // The capture search is skipped when no multiplier letter is there to find.
    let letter = s.bytes().any(|b| matches!(b, b'k' | b'K' | b'm' | b'M'));
    let found = letter
        .then(|| MULT.captures(s).and_then(|c| c.get(1)).map(|m| m.as_str()))
        .flatten();
    let multiplier = match found {
        Some("k" | "K") => 1_000.0,
        Some("m" | "M") => 1_000_000.0,
        _ => 1.0,
    };

    // The digits and separators, read twice over without collecting them: amounts are parsed
    // for every number of every string once a bundle has a known amount.
    let number = || {
        s.bytes()
            .filter(|b| b.is_ascii_digit() || matches!(b, b'.' | b','))
    };
    let (mut len, mut last_sep, mut digits, mut zeros_only) = (0, None, false, true);
    for b in number() {
        if b.is_ascii_digit() {
            digits = true;
        } else {
            // Whether all before this separator is zeros (a separator is not one).
            last_sep = Some((len, zeros_only));
        }
        zeros_only &= b == b'0';
        len += 1;
    }
    if !digits {
        return None;
    }
    // A final separator followed by 1–2 digits, or after a leading zero, is the decimal one.
    let decimal = match last_sep {
        Some((i, zeros_before)) if len - i - 1 <= 2 || zeros_before => Some(i),
        _ => None,
    };
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let out: &mut [u8] = if len < stack.len() {
        &mut stack
    } else {
        heap.resize(len + 1, 0);
        &mut heap
    };
    let mut n = 0;
    for (i, b) in number().enumerate() {
        let keep = if Some(i) == decimal {
            Some(b'.')
        } else {
            b.is_ascii_digit().then_some(b)
        };
        if let Some(k) = keep {
            out[n] = k;
            n += 1;
        }
    }
    std::str::from_utf8(&out[..n])
        .ok()?
        .parse::<f64>()
        .ok()
        .map(|n| n * multiplier)
}

/// Entities whose values are amounts or percentages: only these become bands under
/// `generalize`. Anything else a policy generalizes — a phone number, an e-mail address, an
/// employee's id — is masked (`[PHONE]`), not read as an amount.
const AMOUNT_ENTITIES: &[&str] = &[
    "MONEY",
    "PRICE",
    "AMOUNT",
    "COST",
    "CREDIT_LIMIT",
    "SALARY",
    "WAGE",
    "MARGIN",
    "MARGIN_PERCENT",
    "DISCOUNT",
    "PERCENT",
];

/// Amounts to bands in the bundle's currency; margins and discounts to low/normal/high (see
/// [`AMOUNT_ENTITIES`]). `None` when `entity` is not one or the value is not a number, and the
/// caller masks it.
fn generalize(entity: &str, amount: Option<f64>, currency: &str) -> Option<String> {
    if !AMOUNT_ENTITIES.contains(&entity) {
        return None;
    }
    let n = amount?;
    // Odoo's margin_percent is a fraction (0.083); its discount is already in percent (8.3).
    let percent = |n: f64| if n.abs() <= 1.0 { n * 100.0 } else { n };
    Some(match entity {
        "MARGIN" | "MARGIN_PERCENT" => {
            let p = percent(n);
            (if p < 10.0 {
                "low margin"
            } else if p <= 30.0 {
                "normal margin"
            } else {
                "high margin"
            })
            .to_owned()
        }
        "DISCOUNT" | "PERCENT" => {
            let p = n;
            (if p < 5.0 {
                "low discount"
            } else if p <= 15.0 {
                "normal discount"
            } else {
                "high discount"
            })
            .to_owned()
        }
        _ => {
            let band = match n.abs() {
                a if a < 1_000.0 => "under 1k",
                a if a < 10_000.0 => "1k–10k",
                a if a < 100_000.0 => "10k–100k",
                _ => "over 100k",
            };
            if currency.is_empty() {
                band.to_owned()
            } else {
                format!("{band} {currency}")
            }
        }
    })
}

/// A number as written in text, in either grouping convention.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)\d{1,3}(?:[.,' \x{a0}\x{202f}]\d{3})+(?:[.,]\d{1,2})?(?-u:\b)|(?-u:\b)\d+(?:[.,]\d{1,2})?(?-u:\b)")
        .unwrap_or_else(|_| never())
});

/// An amount's identity for matching (cents); too short a number to find safely gives None.
fn amount_key(s: &str) -> Option<i64> {
    let n = parse_amount(s)?;
    let cents = (n * 100.0).round() as i64;
    let significant = significant_digits(cents.unsigned_abs());
    (cents.unsigned_abs() >= 100 && significant >= 3 || cents.unsigned_abs() >= 10_000)
        .then_some(cents)
}

/// Digits of `n` without its trailing zeros (1200 → 2; 0 → 0).
fn significant_digits(mut n: u64) -> u32 {
    if n == 0 {
        return 0;
    }
    while n.is_multiple_of(10) {
        n /= 10;
    }
    n.ilog10() + 1
}

#[cfg(test)]
mod tests;
