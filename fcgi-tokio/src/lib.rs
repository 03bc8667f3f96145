//! # fcgi-tokio
//!
//! Not yet implemented: this crate is a placeholder in the workspace so that its name, place
//! and dependency on [`fcgi_core`] are fixed. See the repository's issue tracker and
//! `ARCHITECTURE.md` for what it will hold. It re-exports the core.
#![forbid(unsafe_code)]

pub use fcgi_core;
