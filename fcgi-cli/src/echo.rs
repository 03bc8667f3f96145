//! `fcgi echo`: serves the echo application ([`fcgi_echo`]) — point a web server at it to
//! see exactly which params and body it sends. All three roles; multiplexing on.

use std::io::Write;

use fcgi_core::server::RoleSet;
use fcgi_tokio::server::ServerOptions;
use fcgi_tokio::{Backend, Listener, TokioRuntime};

use crate::exit::Exit;

/// `fcgi echo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to listen: tcp:HOST:PORT (port 0 picks one), unix:PATH, HOST:PORT. Without it,
    /// fd 0 must be a listening socket (spawn-fcgi, Apache mod_fcgid, systemd).
    #[arg(long, short, value_parser = crate::connect::parse_backend)]
    listen: Option<Backend>,
    /// Connections served at once at most (more wait in the listen backlog).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
}

/// Serves until Ctrl-C or SIGTERM, then stops gracefully (requests in flight finish).
pub(crate) async fn run(args: Args) -> Exit {
    let listener = match bind(args.listen.as_ref()).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("fcgi echo: {e}");
            return Exit::Failure;
        }
    };
    let mut options = ServerOptions::default();
    options.core.multiplex = true;
    options.core.roles = RoleSet::ALL;
    options.max_connections = args.max_connections.max(1);
    let server = fcgi_tokio::server(options);
    // On stdout, flushed: what a script waits for (the port picked for port 0).
    let place = match (&args.listen, listener.local_addr()) {
        (_, Some(addr)) => format!("tcp:{addr}"),
        (Some(backend), None) => backend.to_string(),
        (None, None) => "the inherited socket".to_owned(),
    };
    println!("fcgi echo: listening on {place}");
    let _ = std::io::stdout().flush();
    let handle = server.shutdown_handle();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping: requests in flight finish");
        handle.shutdown();
    });
    match server
        .serve(listener, fcgi_echo::handler(TokioRuntime))
        .await
    {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("fcgi echo: {e}");
            Exit::Failure
        }
    }
}

async fn bind(listen: Option<&Backend>) -> Result<Listener, String> {
    match listen {
        Some(Backend::Tcp(addr)) => Listener::bind_tcp(*addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}")),
        Some(Backend::Name { host, port }) => {
            let addr = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host} has no address"))?;
            Listener::bind_tcp(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        }
        Some(Backend::Unix(path)) => Listener::bind_unix(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display())),
        Some(other) => Err(format!("cannot listen on {other}")),
        None => Listener::inherited()
            .map_err(|e| format!("fd 0: {e}"))?
            .ok_or_else(|| "no --listen, and fd 0 is not a listening socket".to_owned()),
    }
}

/// Ctrl-C, or SIGTERM (what `docker stop` and systemd send).
pub(crate) async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match &mut term {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}
