//! pullgate's domain: everything the gateway decides, with no knowledge of
//! AWS, of a web framework or of an HTTP client.
//!
//! Request flow (see README "Request flow"):
//! 1. [`route::parse`] turns method + raw path + query into a [`route::Route`],
//!    validating names, tags and digests against the OCI grammar
//!    ([`reference`]) before anything is built from them.
//! 2. [`mapping::HostMappings::lookup`] finds the mapping by host and longest
//!    name prefix; unmapped names never leave the gateway.
//! 3. [`decision`] picks redirect or proxy for this client and mapping.
//! 4. [`location`] builds every URL we hand out from the mapping, never from
//!    the request.

pub mod challenge;
pub mod client;
pub mod credentials;
pub mod decision;
pub mod enrich;
pub mod error;
pub mod event;
pub mod inline_str;
pub mod location;
pub mod mapping;
pub mod privacy;
pub mod realm;
pub mod reference;
pub mod route;
pub mod scope;
pub mod sink;
pub mod store;
pub mod sync;
pub mod text;
pub mod time;
pub mod token_scopes;
pub mod useragent;
mod words;

pub use error::{ErrorCode, RegistryError};
