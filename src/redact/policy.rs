//! Redaction policies: TOML files in `redaction/`, each with a name, a version, class actions,
//! field rules by JSON path, detector settings and allow-list patterns. Errors name the file,
//! the line and the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::detect::{Detectors, Kind};
use super::path::PathPattern;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("redaction directory {0} does not exist")]
    MissingDir(PathBuf),
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {reason}")]
    Invalid {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("no redaction policy named `{0}` (known: {1})")]
    Unknown(String, String),
}

/// What happens to a value of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A stable typed token such as `[CUSTOMER_1]`, restorable where a person may see it.
    Pseudonymize,
    /// A fixed placeholder such as `[PRICE]`.
    Mask,
    /// Amounts to bands, percentages to low/normal/high; anything else is masked.
    Generalize,
    /// Removed (a field) or replaced by `[REDACTED]` (a span of text).
    Drop,
    Keep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    classes: BTreeMap<String, Spanned<Action>>,
    #[serde(default)]
    detectors: DetectorFile,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectorFile {
    enabled: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    classes: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    employee_id_patterns: Vec<Spanned<String>>,
    #[serde(default)]
    allow_patterns: Vec<Spanned<String>>,
    #[serde(default = "yes")]
    person_gazetteer: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    path: Spanned<String>,
    class: Spanned<String>,
    entity: String,
    action: Option<Action>,
}

/// A field rule: values at `path` are of `class`, tokens are labelled `entity`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub path: PathPattern,
    pub class: String,
    pub entity: String,
    pub action: Action,
}

/// A loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub version: String,
    pub description: String,
    pub sha256: String,
    pub file: PathBuf,
    pub classes: BTreeMap<String, Action>,
    pub rules: Vec<Rule>,
    pub detectors: Detectors,
    pub detector_classes: BTreeMap<Kind, String>,
    pub person_gazetteer: bool,
}

fn default_class(kind: Kind) -> &'static str {
    match kind {
        Kind::Money => "pricing",
        Kind::EmployeeId => "hr",
        _ => "customer_pii",
    }
}

impl Policy {
    pub fn load(file: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(file).map_err(|source| PolicyError::Io {
            file: file.to_owned(),
            source,
        })?;
        Self::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, PolicyError> {
        let invalid = |span: Option<std::ops::Range<usize>>, reason: String| PolicyError::Invalid {
            file: file.to_owned(),
            line: span.map(|s| line_of(text, s.start)).unwrap_or(1),
            reason,
        };
        let parsed: File =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_owned()))?;
        if parsed.version.trim().is_empty() {
            return Err(invalid(None, "`version` must not be empty".to_owned()));
        }
        let mut classes = BTreeMap::new();
        for (name, action) in &parsed.classes {
            classes.insert(name.clone(), *action.get_ref());
        }
        for required in ["customer_pii", "pricing", "hr"] {
            if !classes.contains_key(required) {
                return Err(invalid(
                    None,
                    format!("class `{required}` must be given an action"),
                ));
            }
        }
        let mut rules = Vec::with_capacity(parsed.rules.len());
        for r in &parsed.rules {
            let path = PathPattern::parse(r.path.get_ref())
                .map_err(|e| invalid(Some(r.path.span()), e.to_string()))?;
            let class = r.class.get_ref().clone();
            let Some(class_action) = classes.get(&class) else {
                return Err(invalid(
                    Some(r.class.span()),
                    format!("unknown class `{class}`"),
                ));
            };
            if r.entity.is_empty() || !r.entity.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            {
                return Err(invalid(
                    Some(r.path.span()),
                    format!("entity `{}` must be UPPER_SNAKE_CASE", r.entity),
                ));
            }
            rules.push(Rule {
                path,
                class,
                entity: r.entity.clone(),
                action: r.action.unwrap_or(*class_action),
            });
        }
        let d = &parsed.detectors;
        let enabled = match &d.enabled {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|s| {
                        Kind::from_label(s.get_ref()).ok_or_else(|| {
                            invalid(
                                Some(s.span()),
                                format!("unknown detector `{}`", s.get_ref()),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let mut detector_classes = BTreeMap::new();
        for kind in Kind::ALL {
            detector_classes.insert(kind, default_class(kind).to_owned());
        }
        for (label, class) in &d.classes {
            let kind = Kind::from_label(label).ok_or_else(|| {
                invalid(Some(class.span()), format!("unknown detector `{label}`"))
            })?;
            if !classes.contains_key(class.get_ref()) {
                return Err(invalid(
                    Some(class.span()),
                    format!("unknown class `{}`", class.get_ref()),
                ));
            }
            detector_classes.insert(kind, class.get_ref().clone());
        }
        let check = |patterns: &[Spanned<String>]| -> Result<Vec<String>, PolicyError> {
            patterns
                .iter()
                .map(|p| {
                    regex::Regex::new(p.get_ref())
                        .map(|_| p.get_ref().clone())
                        .map_err(|e| invalid(Some(p.span()), format!("invalid pattern: {e}")))
                })
                .collect()
        };
        let employee_ids = check(&d.employee_id_patterns)?;
        let allow = check(&d.allow_patterns)?;
        let detectors = Detectors::new(enabled.as_deref(), &employee_ids, &allow)
            .map_err(|e| invalid(None, e.to_string()))?;
        Ok(Self {
            name: parsed.name,
            version: parsed.version,
            description: parsed.description,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            file: file.to_owned(),
            classes,
            rules,
            detectors,
            detector_classes,
            person_gazetteer: d.person_gazetteer,
        })
    }

    pub fn class_action(&self, class: &str) -> Action {
        self.classes.get(class).copied().unwrap_or(Action::Mask)
    }

    pub fn detector_class(&self, kind: Kind) -> &str {
        self.detector_classes
            .get(&kind)
            .map(String::as_str)
            .unwrap_or("customer_pii")
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_reason() {
        let file = Path::new("redaction/broken.toml");
        let text = "name = \"x\"\nversion = \"1\"\n[classes]\ncustomer_pii = \"pseudonymize\"\npricing = \"mask\"\nhr = \"mask\"\n\n[[rule]]\npath = \"$..price[\"\nclass = \"pricing\"\nentity = \"PRICE\"\n";
        let e = Policy::parse(file, text).unwrap_err().to_string();
        assert!(e.starts_with("redaction/broken.toml:9:"), "{e}");
        let e = Policy::parse(
            file,
            &text
                .replace("$..price[", "$..price")
                .replace("class = \"pricing\"", "class = \"prices\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":10:") && e.contains("unknown class"), "{e}");
        let e = Policy::parse(file, "name = \"x\"\nversion = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2:"), "{e}");
        let e = Policy::parse(file, &text.replace("hr = \"mask\"", "hr = \"shred\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":6:"), "{e}");
    }
}
