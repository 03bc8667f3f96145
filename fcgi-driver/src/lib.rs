#![doc = include_str!("../README.md")]
//!
//! ---
//!
//! The runtime-neutral half of the FastCGI adapters: it drives [`fcgi_core`] connections over
//! any socket and any executor, given two small traits ([`runtime::Runtime`] for spawning and
//! timers, [`runtime::Transport`] / [`runtime::Listener`] for sockets). `fcgi-tokio` and
//! `fcgi-smol` implement those traits and re-export this crate's API, so both offer exactly the
//! same behaviour and are tested by one suite.
//!
//! What lives here is bookkeeping, not protocol: moving bytes between sockets and the core,
//! handing request streams to handler tasks with back-pressure, timeouts, connection and
//! request limits, graceful shutdown. Every protocol rule is in `fcgi-core`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use fcgi_core;
pub use inherited::{InheritedListener, inherited_listener};

pub mod client;
mod inherited;
mod log;
mod pump;
pub mod runtime;
pub mod server;
mod stats;
mod sync;
