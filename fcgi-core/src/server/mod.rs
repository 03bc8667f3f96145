//! The application side of a connection (what php-fpm is): records in, request events out;
//! response commands in, records out.

mod config;
mod connection;
mod event;

pub use config::{RoleSet, ServerConfig};
pub use connection::ServerConnection;
pub use event::{Event, Rejection};
