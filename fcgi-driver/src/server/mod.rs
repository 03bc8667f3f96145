//! Serving FastCGI: your program is the application behind a web server.

mod driver;
mod handler;
mod options;
mod registry;
mod serve;
mod shared;
mod state;
mod task;

pub use handler::{Body, Handler, Request, Response};
pub use options::{ServerOptions, WebServerAddrs};
pub use serve::{Server, ShutdownHandle};
pub use state::ServerStats;
pub use task::CANCELLED_APP_STATUS;
