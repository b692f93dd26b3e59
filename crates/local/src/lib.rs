//! Local adapters of pullgate's ports.

pub mod file_sink;
