//! The echo FastCGI application on futures-io (behaviour: `fcgi_echo`), on smol's
//! executor or async-std's.
//!
//! ```text
//! cargo run -p fcgi-smol --example echo -- --tcp 127.0.0.1:9000 [--executor smol|async-std]
//! cargo run -p fcgi-smol --example echo -- --unix /tmp/echo.sock
//! cargo run -p fcgi-smol --example echo            # fd 0 is a listening socket (spawn-fcgi, mod_fcgid)
//! ```
//! Multiplexing is on; all three roles are served. Ctrl-C or SIGTERM stops accepting and
//! lets the requests in flight finish (exit 0), as the tokio example does.

use std::io;

use async_signal::{Signal, Signals};
use fcgi_core::server::RoleSet;
use fcgi_echo::{self as echo, ListenArg};
use fcgi_smol::fcgi_driver::runtime::Runtime;
use fcgi_smol::server::ServerOptions;
use fcgi_smol::{Listener, SmolRuntime};
use smol::stream::StreamExt;

fn main() -> io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut executor = "smol".to_owned();
    if let Some(i) = args.iter().position(|a| a == "--executor") {
        if i + 1 >= args.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--executor needs a value",
            ));
        }
        executor = args.remove(i + 1);
        args.remove(i);
    }
    match executor.as_str() {
        "smol" => {
            let rt = SmolRuntime::new(|task| smol::spawn(task).detach());
            smol::block_on(run(rt, args))
        }
        "async-std" => {
            let rt = SmolRuntime::new(|task| {
                async_std::task::spawn(task);
            });
            async_std::task::block_on(run(rt, args))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown executor {other:?} (smol or async-std)"),
        )),
    }
}

async fn run(rt: SmolRuntime, args: Vec<String>) -> io::Result<()> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let listener = match echo::parse_listen(&args).map_err(invalid)? {
        ListenArg::Tcp(addr) => Listener::bind_tcp(addr).await?,
        ListenArg::Unix(path) => Listener::bind_unix(path)?,
        ListenArg::Inherited => Listener::inherited()?
            .ok_or_else(|| invalid("no address given and fd 0 is not a listening socket".into()))?,
    };
    let mut opts = ServerOptions::default();
    opts.core.multiplex = true;
    opts.core.roles = RoleSet::ALL;
    match listener.local_addr() {
        Some(addr) => eprintln!("echo: FastCGI on {addr}"),
        None => eprintln!("echo: FastCGI on a Unix socket"),
    }
    let server = fcgi_smol::server(rt.clone(), opts);
    // The first Ctrl-C or SIGTERM starts a graceful shutdown: `serve` returns once the
    // requests in flight are answered.
    let mut signals = Signals::new([Signal::Int, Signal::Term])?;
    let handle = server.shutdown_handle();
    rt.spawn(Box::pin(async move {
        if signals.next().await.is_some() {
            handle.shutdown();
        }
    }));
    server.serve(listener, echo::handler(rt)).await
}
