//! The web-server side of a connection (what nginx is): request commands in, records out;
//! records in, response events out.

mod config;
mod connection;
mod event;

pub use config::ClientConfig;
pub use connection::ClientConnection;
pub use event::Event;
