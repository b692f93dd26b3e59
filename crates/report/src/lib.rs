//! Adoption reports: which organizations use the software, how much and how.
//!
//! The SQL lives once in `infra/sql/` and runs on Athena in AWS and on an
//! embedded engine locally; [`sql`] fills in the few dialect differences.
//! Engines are adapters behind [`engine::QueryEngine`]; [`model`] turns their
//! result tables into a [`model::Report`], which [`render`] prints.

pub mod dates;
pub mod engine;
pub mod model;
pub mod render;
pub mod sql;
pub mod table;

pub use engine::{EngineError, QueryEngine};
pub use model::{build_report, build_sections, Report};
pub use sql::{Dialect, Query, ReportParams, Sessions};
pub use table::{Table, Value};
