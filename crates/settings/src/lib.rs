//! What pullgate's entry points are configured with, before any adapter
//! exists: the defaults, stated once ([`defaults`]), and reading settings
//! through a lookup ([`lookup`]) so that parsing is tested with a map
//! instead of the process environment.
//!
//! `pullgate serve` takes its defaults from here for its clap flags, the
//! Lambda functions for their environment variables: local and AWS runs
//! cannot drift apart. This crate depends on the domain only, so any crate
//! may take its defaults from here.

pub mod defaults;
pub mod lookup;

pub use lookup::{SettingsError, Vars};
