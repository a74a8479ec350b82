//! The prompt registry: versioned templates read from `prompts/<task>/<version>/`, compiled at
//! start with strict undefined, hashed, and rendered into chat messages.
//!
//! Issue #4 adds the lock file, release states enforcement, canaries and injection fencing tests;
//! the layout and [`Registry::render`] seam are already the final ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bundle::Task;

const FILES: [&str; 4] = ["system.jinja", "user.jinja", "meta.toml", "schema.json"];

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompts directory {0} does not exist")]
    MissingDir(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid meta.toml: {message}")]
    Meta { path: PathBuf, message: String },
    #[error("{path}: invalid JSON schema: {message}")]
    Schema { path: PathBuf, message: String },
    #[error("{file}:{line}: {reason}")]
    Template {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("no template version `{version}` for task {task}")]
    UnknownVersion { task: Task, version: String },
    #[error("rendering {file} failed at line {line}: {reason}")]
    Render {
        file: String,
        line: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Released,
    Retired,
}

/// Model parameters and documentation of one template version.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub description: String,
    pub status: Status,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub uses: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
}

/// Which exact template produced an output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TemplateRef {
    pub task: Task,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

/// Everything a provider needs for one task.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub template: TemplateRef,
    pub messages: Vec<ChatMessage>,
    pub schema: Value,
    pub meta: Meta,
}

struct Version {
    sha256: String,
    meta: Meta,
    schema: Value,
}

pub struct Registry {
    env: Environment<'static>,
    versions: BTreeMap<(Task, String), Version>,
    production: BTreeMap<Task, String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .field("production", &self.production)
            .finish()
    }
}

impl Registry {
    /// Loads and compiles every version under `dir`; `production` names the default per task.
    pub fn load(dir: &Path, production: &BTreeMap<Task, String>) -> Result<Self, PromptError> {
        if !dir.is_dir() {
            return Err(PromptError::MissingDir(dir.to_owned()));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        let mut versions = BTreeMap::new();
        for task in Task::ALL {
            let task_dir = dir.join(task.as_str());
            let entries = std::fs::read_dir(&task_dir).map_err(|source| PromptError::Io {
                path: task_dir.clone(),
                source,
            })?;
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for version in names {
                let vdir = task_dir.join(&version);
                let v = load_version(&mut env, task, &version, &vdir)?;
                versions.insert((task, version), v);
            }
        }
        let mut chosen = BTreeMap::new();
        for task in Task::ALL {
            let version = production
                .get(&task)
                .cloned()
                .unwrap_or_else(|| "v1".to_owned());
            if !versions.contains_key(&(task, version.clone())) {
                return Err(PromptError::UnknownVersion { task, version });
            }
            chosen.insert(task, version);
        }
        Ok(Self {
            env,
            versions,
            production: chosen,
        })
    }

    /// The version used for `task`: the bundle's pin if any, else the production label.
    pub fn resolve(&self, task: Task, pinned: Option<&str>) -> Result<TemplateRef, PromptError> {
        let version = match pinned {
            Some(v) => v.to_owned(),
            None => self.production.get(&task).cloned().unwrap_or_default(),
        };
        let v = self.versions.get(&(task, version.clone())).ok_or_else(|| {
            PromptError::UnknownVersion {
                task,
                version: version.clone(),
            }
        })?;
        Ok(TemplateRef {
            task,
            version,
            sha256: v.sha256.clone(),
        })
    }

    /// Renders the system and user messages for a (redacted) bundle context.
    pub fn render(&self, template: &TemplateRef, context: &Value) -> Result<Rendered, PromptError> {
        let v = self
            .versions
            .get(&(template.task, template.version.clone()))
            .ok_or_else(|| PromptError::UnknownVersion {
                task: template.task,
                version: template.version.clone(),
            })?;
        let mut messages = Vec::with_capacity(2);
        for (role, file) in [("system", "system.jinja"), ("user", "user.jinja")] {
            let name = format!("{}/{}/{}", template.task, template.version, file);
            let render_err = |e: minijinja::Error| PromptError::Render {
                file: name.clone(),
                line: e.line().unwrap_or(0),
                reason: e
                    .detail()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.kind().to_string()),
            };
            let content = self
                .env
                .get_template(&name)
                .and_then(|t| t.render(context))
                .map_err(render_err)?;
            messages.push(ChatMessage { role, content });
        }
        Ok(Rendered {
            template: template.clone(),
            messages,
            schema: v.schema.clone(),
            meta: v.meta.clone(),
        })
    }

    pub fn schema(&self, template: &TemplateRef) -> Option<&Value> {
        self.versions
            .get(&(template.task, template.version.clone()))
            .map(|v| &v.schema)
    }
}

fn load_version(
    env: &mut Environment<'static>,
    task: Task,
    version: &str,
    dir: &Path,
) -> Result<Version, PromptError> {
    let mut hasher = Sha256::new();
    let mut texts = BTreeMap::new();
    for file in FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|source| PromptError::Io {
            path: path.clone(),
            source,
        })?;
        // Length-prefixed so that moving text between files changes the hash.
        hasher.update(file.as_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
        texts.insert(file, (path, text));
    }
    let get = |f: &str| texts.get(f).cloned().unwrap_or_default();
    let (meta_path, meta_text) = get("meta.toml");
    let meta: Meta = toml::from_str(&meta_text).map_err(|e| PromptError::Meta {
        path: meta_path,
        message: e.to_string(),
    })?;
    let (schema_path, schema_text) = get("schema.json");
    let schema: Value = serde_json::from_str(&schema_text).map_err(|e| PromptError::Schema {
        path: schema_path.clone(),
        message: e.to_string(),
    })?;
    jsonschema::validator_for(&schema).map_err(|e| PromptError::Schema {
        path: schema_path,
        message: e.to_string(),
    })?;
    for file in ["system.jinja", "user.jinja"] {
        let (path, text) = get(file);
        let name = format!("{task}/{version}/{file}");
        env.add_template_owned(name, text)
            .map_err(|e| PromptError::Template {
                file: path.display().to_string(),
                line: e.line().unwrap_or(0),
                reason: e
                    .detail()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.kind().to_string()),
            })?;
    }
    Ok(Version {
        sha256: hex::encode(hasher.finalize()),
        meta,
        schema,
    })
}

/// The context templates see: the redacted bundle with every optional key present (so strict
/// undefined catches typos in templates, not data a caller left out), plus the reply language.
pub fn context(redacted_bundle: &Value, language: &str) -> Value {
    let get = |v: &Value, k: &str| match v.get(k) {
        Some(x) => x.clone(),
        None => Value::Null,
    };
    let b = redacted_bundle;
    let source = &b["source"];
    let messages: Vec<Value> = b["messages"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| {
                    serde_json::json!({"role": get(m, "role"), "author": get(m, "author"),
                        "sent_at": get(m, "sent_at"), "body": get(m, "body")})
                })
                .collect()
        })
        .unwrap_or_default();
    let reply_to = match &b["reply_to"] {
        Value::Object(r) => serde_json::json!({
            "name": r.get("name").cloned().unwrap_or(Value::Null),
            "email": r.get("email").cloned().unwrap_or(Value::Null),
            "lang": r.get("lang").cloned().unwrap_or(Value::Null)}),
        _ => Value::Null,
    };
    serde_json::json!({
        "event_type": get(b, "event_type"),
        "occurred_at": get(b, "occurred_at"),
        "source": {"system": get(source, "system"), "model": get(source, "model"),
                   "res_id": get(source, "res_id"), "name": get(source, "name")},
        "locale": get(b, "locale"),
        "facts": match b.get("facts") {
            Some(Value::Object(f)) => Value::Object(f.clone()),
            _ => serde_json::json!({}),
        },
        "messages": messages,
        "reply_to": reply_to,
        "language": language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_prompts() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")
    }

    #[test]
    fn repository_prompts_load_and_render_a_minimal_bundle() {
        let reg = Registry::load(&repo_prompts(), &BTreeMap::new()).unwrap();
        let bundle = serde_json::json!({"event_id": "e", "event_type": "other",
            "occurred_at": "2026-11-20T06:00:00Z", "source": {"system": "odoo", "model": "x", "res_id": 1}});
        for task in Task::ALL {
            let t = reg.resolve(task, None).unwrap();
            assert_eq!(t.sha256.len(), 64);
            let r = reg.render(&t, &context(&bundle, "en")).unwrap();
            assert_eq!(r.messages.len(), 2);
            assert!(!r.messages[1].content.is_empty());
        }
    }

    #[test]
    fn a_broken_template_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo_prompts(), dir.path());
        let broken = dir.path().join("classification/v1/user.jinja");
        std::fs::write(&broken, "line one\n{% if %}\n").unwrap();
        let e = Registry::load(dir.path(), &BTreeMap::new()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("classification/v1/user.jinja:2"), "{msg}");
    }

    #[test]
    fn unknown_pinned_version_is_an_error() {
        let reg = Registry::load(&repo_prompts(), &BTreeMap::new()).unwrap();
        assert!(matches!(
            reg.resolve(Task::Classification, Some("v99")),
            Err(PromptError::UnknownVersion { .. })
        ));
    }

    fn copy_dir(from: &Path, to: &Path) {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.path().is_dir() {
                std::fs::create_dir_all(&dest).unwrap();
                copy_dir(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }
}
