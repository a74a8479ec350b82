//! exbrief: governed LLM briefs for operational exceptions in Odoo-run distribution businesses.
//!
//! Module map: ../shared/DESIGN.md. `http` → `pipeline` → `redact`/`prompts`/`llm`/`store` →
//! `bundle`/`config`.

pub mod app;
pub mod audit;
pub mod bundle;
pub mod committer;
pub mod config;
pub mod demo;
pub mod http;
pub mod keys;
pub mod llm;
pub mod metrics;
pub mod odoo;
pub mod outbox;
pub mod pipeline;
pub mod prompts;
pub mod redact;
pub mod review;
pub mod store;
pub mod vault;
pub mod webhook;
