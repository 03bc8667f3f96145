//! The echo FastCGI application on futures-io (behaviour: `fcgi_driver::echo`), on smol's
//! executor or async-std's.
//!
//! ```text
//! cargo run -p fcgi-smol --example echo -- --tcp 127.0.0.1:9000 [--executor smol|async-std]
//! cargo run -p fcgi-smol --example echo -- --unix /tmp/echo.sock
//! cargo run -p fcgi-smol --example echo            # fd 0 is a listening socket (spawn-fcgi, mod_fcgid)
//! ```
//! Multiplexing is on; all three roles are served.

use std::io;

use fcgi_core::server::RoleSet;
use fcgi_smol::server::ServerOptions;
use fcgi_smol::{Listener, SmolRuntime};

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
    let listener = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--tcp", addr] => {
            let addr = addr
                .parse()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Listener::bind_tcp(addr).await?
        }
        ["--unix", path] => Listener::bind_unix(path)?,
        [] => Listener::inherited()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "no address given and fd 0 is not a listening socket",
            )
        })?,
        _ => {
            eprintln!("usage: echo [--tcp ADDR | --unix PATH] [--executor smol|async-std]");
            std::process::exit(2);
        }
    };
    let mut opts = ServerOptions::default();
    opts.core.multiplex = true;
    opts.core.roles = RoleSet::ALL;
    match listener.local_addr() {
        Some(addr) => eprintln!("echo: FastCGI on {addr}"),
        None => eprintln!("echo: FastCGI on a Unix socket"),
    }
    let server = fcgi_smol::server(rt.clone(), opts);
    server
        .serve(listener, fcgi_smol::fcgi_driver::echo::handler(rt))
        .await
}
