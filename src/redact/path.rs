//! A small JSON-path dialect for field rules: `$` root, `.name` / `['name']` children, `.*`
//! any child, `[n]` an index, `[*]` any index, and `..` recursive descent before any of those
//! (`$..price_unit`, `$.facts.employees[*].name`, `$..partner_id[1]`).

use std::fmt;

/// One step of a concrete location in a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Renders a concrete location as `$.facts.orders[0].name`.
pub fn render(steps: &[Step]) -> String {
    let mut s = String::with_capacity(
        1 + steps
            .iter()
            .map(|st| match st {
                Step::Key(k) => k.len() + 1,
                Step::Index(_) => 4,
            })
            .sum::<usize>(),
    );
    s.push('$');
    for step in steps {
        match step {
            Step::Key(k) if is_plain(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Key(k) => {
                s.push_str("['");
                s.push_str(&k.replace('\'', "\\'"));
                s.push_str("']");
            }
            Step::Index(i) => {
                let _ = fmt::Write::write_fmt(&mut s, format_args!("[{i}]"));
            }
        }
    }
    s
}

fn is_plain(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Key(String),
    AnyKey,
    Index(usize),
    AnyIndex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    /// `..`: this selector may match at any depth below the previous segment.
    descend: bool,
    selector: Selector,
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON path `{path}` at character {at}: {reason}")]
pub struct PathError {
    pub path: String,
    pub at: usize,
    pub reason: &'static str,
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PathPattern {
    pub fn parse(source: &str) -> Result<Self, PathError> {
        let err = |at: usize, reason: &'static str| PathError {
            path: source.to_owned(),
            at,
            reason,
        };
        let chars: Vec<char> = source.chars().collect();
        if chars.first() != Some(&'$') {
            return Err(err(0, "must start with `$`"));
        }
        let mut i = 1;
        let mut segments = Vec::new();
        while i < chars.len() {
            let mut descend = false;
            match chars[i] {
                '.' => {
                    i += 1;
                    if chars.get(i) == Some(&'.') {
                        descend = true;
                        i += 1;
                    }
                    if chars.get(i) == Some(&'[') {
                        if !descend {
                            return Err(err(i, "`.[` is not valid; write `[` or `..[`"));
                        }
                        continue_bracket(&chars, &mut i, descend, &mut segments, &err)?;
                        continue;
                    }
                    if chars.get(i) == Some(&'*') {
                        i += 1;
                        segments.push(Segment {
                            descend,
                            selector: Selector::AnyKey,
                        });
                        continue;
                    }
                    let start = i;
                    while i < chars.len()
                        && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
                    {
                        i += 1;
                    }
                    if i == start {
                        return Err(err(i, "expected a field name, `*` or `[`"));
                    }
                    segments.push(Segment {
                        descend,
                        selector: Selector::Key(chars[start..i].iter().collect()),
                    });
                }
                '[' => continue_bracket(&chars, &mut i, false, &mut segments, &err)?,
                _ => return Err(err(i, "expected `.` or `[`")),
            }
        }
        if segments.is_empty() {
            return Err(err(source.len(), "a rule must select something below `$`"));
        }
        Ok(Self {
            source: source.to_owned(),
            segments,
        })
    }

    /// A field name every matching location has at a fixed distance from its end, and that
    /// distance (0: the last step): the nearest named step with only single steps after it
    /// (`$..price_unit` → `price_unit`, 0; `$..partner_id[1]` → `partner_id`, 1;
    /// `$..employees[*].*` → `employees`, 2). Used to index rules.
    pub fn anchor(&self) -> Option<(&str, usize)> {
        for (back, segment) in self.segments.iter().rev().enumerate() {
            if let Selector::Key(k) = &segment.selector {
                return Some((k, back));
            }
            // A step before a `..` may sit at any distance from the end.
            if segment.descend {
                return None;
            }
        }
        None
    }

    pub fn matches(&self, steps: &[Step]) -> bool {
        match_from(&self.segments, steps)
    }
}

fn continue_bracket(
    chars: &[char],
    i: &mut usize,
    descend: bool,
    segments: &mut Vec<Segment>,
    err: &dyn Fn(usize, &'static str) -> PathError,
) -> Result<(), PathError> {
    // chars[*i] == '['
    *i += 1;
    let selector = match chars.get(*i) {
        Some('*') => {
            *i += 1;
            Selector::AnyIndex
        }
        Some('\'') | Some('"') => {
            let quote = chars[*i];
            *i += 1;
            let start = *i;
            while *i < chars.len() && chars[*i] != quote {
                *i += 1;
            }
            if *i >= chars.len() {
                return Err(err(start, "unterminated quoted name"));
            }
            let name: String = chars[start..*i].iter().collect();
            *i += 1;
            Selector::Key(name)
        }
        Some(c) if c.is_ascii_digit() => {
            let start = *i;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                *i += 1;
            }
            let digits: String = chars[start..*i].iter().collect();
            Selector::Index(digits.parse().map_err(|_| err(start, "index too large"))?)
        }
        _ => return Err(err(*i, "expected `*`, a number or a quoted name after `[`")),
    };
    if chars.get(*i) != Some(&']') {
        return Err(err(*i, "expected `]`"));
    }
    *i += 1;
    segments.push(Segment { descend, selector });
    Ok(())
}

fn step_matches(selector: &Selector, step: &Step) -> bool {
    match (selector, step) {
        (Selector::Key(k), Step::Key(s)) => k == s,
        (Selector::AnyKey, Step::Key(_)) => true,
        (Selector::Index(n), Step::Index(i)) => n == i,
        (Selector::AnyIndex, Step::Index(_)) => true,
        _ => false,
    }
}

fn match_from(segments: &[Segment], steps: &[Step]) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return steps.is_empty();
    };
    if first.descend {
        // `..x`: x may match at this step or at any deeper one.
        (0..steps.len()).any(|skip| {
            step_matches(&first.selector, &steps[skip]) && match_from(rest, &steps[skip + 1..])
        })
    } else {
        match steps.split_first() {
            Some((step, more)) => step_matches(&first.selector, step) && match_from(rest, more),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<Step> {
        // Test helper: "a.b.0.c" → [Key a, Key b, Index 0, Key c]
        s.split('.')
            .map(|p| match p.parse::<usize>() {
                Ok(n) => Step::Index(n),
                Err(_) => Step::Key(p.to_owned()),
            })
            .collect()
    }

    #[test]
    fn recursive_descent_wildcards_and_many2one_pairs() {
        let p = PathPattern::parse("$..price_unit").unwrap();
        assert!(p.matches(&path("facts.purchase_order.order_line.0.price_unit")));
        assert!(p.matches(&path("price_unit")));
        assert!(!p.matches(&path("facts.price_unit.x")));
        let p = PathPattern::parse("$.facts.employees[*].name").unwrap();
        assert!(p.matches(&path("facts.employees.3.name")));
        assert!(!p.matches(&path("facts.employees.name")));
        let p = PathPattern::parse("$..partner_id[1]").unwrap();
        assert!(p.matches(&path("facts.impacted_sales_orders.0.partner_id.1")));
        assert!(!p.matches(&path("facts.impacted_sales_orders.0.partner_id.0")));
        let p = PathPattern::parse("$..employees..*").unwrap();
        assert!(p.matches(&path("facts.employees.0.name")));
        let p = PathPattern::parse("$['facts']..[*]").unwrap();
        assert!(p.matches(&path("facts.a.2")));
        for (pattern, anchor) in [
            ("$..name", Some(("name", 0))),
            ("$..partner_id[1]", Some(("partner_id", 1))),
            ("$..employees[*].*", Some(("employees", 2))),
            ("$.facts.customer.name", Some(("name", 0))),
            ("$..employees..*", None),
            ("$['facts']..[*]", None),
            ("$[*]", None),
        ] {
            assert_eq!(
                PathPattern::parse(pattern).unwrap().anchor(),
                anchor,
                "{pattern}"
            );
        }
    }

    #[test]
    fn bad_paths_say_where() {
        for bad in [
            "", "facts.x", "$.", "$[", "$[x]", "$['a", "$.a[1", "$.[1]", "$",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PathPattern::parse("$.a[x]").unwrap_err().at, 4);
    }

    #[test]
    fn render_round_trips_concrete_paths() {
        let steps = vec![
            Step::Key("facts".into()),
            Step::Key("odd key".into()),
            Step::Index(2),
        ];
        assert_eq!(render(&steps), "$.facts['odd key'][2]");
    }
}
