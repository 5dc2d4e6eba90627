//! Sinks: take the event stream and give what a person or a program reads — the JSON document,
//! NDJSON lines, or a text summary. Each writes as connections end, so memory follows the
//! connections still open, not the size of the capture.

pub mod escape;
pub mod json;
pub mod metrics;
pub mod ndjson;
pub mod select;
pub mod spool;
pub mod text;

/// The version of the JSON and NDJSON formats; bumped on any incompatible change.
pub const SCHEMA_VERSION: &str = "1.0";
