#![doc = include_str!("../README.md")]
//!
//! ---
//!
//! A complete, sans-IO implementation of the FastCGI 1.0 protocol, for both sides of a
//! connection:
//!
//! - [`server::ServerConnection`]: the **application** side (what php-fpm is), which receives
//!   requests from a web server and answers them;
//! - [`client::ClientConnection`]: the **web-server** side (what nginx is), which sends
//!   requests to an application and reads its responses.
//!
//! This crate performs no IO, reads no clock, spawns no thread and knows nothing of async.
//! It turns bytes into events and commands into bytes; the adapters (`fcgi-tokio`,
//! `fcgi-smol`, or a plain blocking loop — see the `blocking_server` example) move those bytes
//! over sockets and own every timeout.
//!
//! ```text
//!            bytes from the socket                     events for the caller
//!   ──────► handle_input(&mut BytesMut) ──► [ connection ] ──► poll_event()
//!            handle_eof()                   [   state    ]
//!   ◄────── poll_transmit() / transmit_chunks() ◄── commands: begin_request, send_stdout,
//!            bytes for the socket                            end_request, abort, ...
//! ```
//!
//! ## Run loop
//!
//! After **any** input or command, drain the outputs until they return nothing:
//! [`poll_event`](server::ServerConnection::poll_event) until `None`, and the transmit queue
//! until empty. When `should_close()` is true and the transmit queue is empty, close the
//! connection. When `wants_input()` is false, stop reading until events are polled or output
//! is written: that is the back-pressure signal, and it keeps every buffer within
//! [`Limits`].
//!
//! ## What the core decides
//!
//! Everything the specification says: record framing and padding, name-value encoding and
//! reassembly, request-id lifecycle (records for inactive ids are ignored, spec 3.3),
//! role rules, multiplexing or `CANT_MPX_CONN`, `OVERLOADED` and `UNKNOWN_ROLE`,
//! `GET_VALUES` answers from the real configuration, `UNKNOWN_TYPE`, abort, keep-alive.
//!
//! ## Zero copy
//!
//! `STDIN`, `STDOUT`, `STDERR` and `DATA` payloads are handed out as [`bytes::Bytes`] split
//! off the input buffer, and payloads handed in as `Bytes` are queued by reference (see
//! [`transmit::Transmit`]). Only name-value blocks are collected, compactly, in [`Params`].
//!
//! ## Features
//!
//! - `std` (default): `std::error::Error` for [`Error`] (through `thiserror`). Without it
//!   the crate is `no_std` + `alloc` with identical behaviour.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod client;
mod error;
mod limits;
mod link;
pub mod params;
mod phase;
pub mod record;
pub mod server;
mod table;
pub mod transmit;

pub use error::{ApiError, Error, LimitExceeded, Malformed, Violation};
pub use limits::Limits;
pub use params::Params;
pub use record::{ProtocolStatus, Role};

/// Chainable setters, one per public field of an options struct: the structs are
/// `#[non_exhaustive]` (they grow without breaking anyone), so outside their crate they are
/// built from `Default` — `ServerOptions::default().max_connections(100)` — rather than
/// with a struct literal. Used by this workspace's crates; not an API of its own.
#[doc(hidden)]
#[macro_export]
macro_rules! __option_setters {
    ($ty:ident { $($field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!(
                    "Sets [`", stringify!($field), "`](Self::", stringify!($field),
                    "); returns the options, for chaining."
                )]
                #[must_use]
                pub fn $field(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}
