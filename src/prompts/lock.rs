//! `prompts/prompts.lock`: the sha256 of every version's files, so that a released version can
//! never change unnoticed. `exbrief prompts lock` writes it; loading the registry checks it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PromptError, Status};
use crate::bundle::Task;

pub const FILE: &str = "prompts.lock";

const HEADER: &str = "# Written by `exbrief prompts lock`. Released versions are immutable: their \
sha256 never changes.\n# Add a new version instead of editing a released one.\n\n";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub status: Status,
    pub sha256: String,
}

/// task → version → entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Lock(pub BTreeMap<String, BTreeMap<String, Entry>>);

impl Lock {
    /// A missing file is an empty lock (then no version may be released).
    pub fn read(dir: &Path) -> Result<Self, PromptError> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|source| PromptError::Io {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| PromptError::Lock {
            reason: format!("{}: {}", path.display(), e.message()),
        })
    }

    pub fn get(&self, task: Task, version: &str) -> Option<&Entry> {
        self.0.get(task.as_str()).and_then(|v| v.get(version))
    }

    /// A released or retired version must be locked with this very hash.
    pub fn check(
        &self,
        task: Task,
        version: &str,
        status: Status,
        sha256: &str,
    ) -> Result<(), PromptError> {
        if status == Status::Draft {
            return Ok(());
        }
        let fail = |reason: String| Err(PromptError::Lock { reason });
        match self.get(task, version) {
            None => fail(format!(
                "{task}/{version} is {} but not in {FILE}: run `exbrief prompts lock`",
                status.as_str()
            )),
            Some(e) if e.status == Status::Draft => fail(format!(
                "{task}/{version} is {} but locked as a draft: run `exbrief prompts lock`",
                status.as_str()
            )),
            Some(e) if e.sha256 != sha256 => fail(format!(
                "{task}/{version} is {} and its files changed (locked sha256 {}, now {sha256}): \
                 released versions are immutable, add a new version instead",
                e.status.as_str(),
                short(&e.sha256)
            )),
            Some(_) => Ok(()),
        }
    }

    /// The lock updated with `current` (task, version, status, sha256): drafts and new releases
    /// are recorded; a released hash is never rewritten.
    pub fn updated(&self, current: &[(Task, String, Status, String)]) -> Result<Self, PromptError> {
        let mut next = self.clone();
        for (task, version, status, sha) in current {
            if let Some(old) = self.get(*task, version)
                && old.status != Status::Draft
                && &old.sha256 != sha
            {
                return Err(PromptError::Lock {
                    reason: format!(
                        "refusing to rewrite the hash of {} {task}/{version} ({} → {}): add a new \
                         version instead",
                        old.status.as_str(),
                        short(&old.sha256),
                        short(sha)
                    ),
                });
            }
            next.0.entry(task.as_str().to_owned()).or_default().insert(
                version.clone(),
                Entry {
                    status: *status,
                    sha256: sha.clone(),
                },
            );
        }
        Ok(next)
    }

    pub fn write(&self, dir: &Path) -> Result<(), PromptError> {
        let path = dir.join(FILE);
        let body = toml::to_string(self).map_err(|e| PromptError::Lock {
            reason: e.to_string(),
        })?;
        std::fs::write(&path, format!("{HEADER}{body}"))
            .map_err(|source| PromptError::Io { path, source })
    }
}

pub fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
