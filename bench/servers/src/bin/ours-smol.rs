//! Our server on smol (one executor thread per core, multiplexing on).
use std::sync::Arc;

use fcgi_bench_servers::{Listen, hello, listen_arg};
use fcgi_smol::server::ServerOptions;
use fcgi_smol::{Listener, SmolRuntime};

fn main() -> std::io::Result<()> {
    let ex = Arc::new(smol::Executor::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for _ in 1..threads {
        let ex = Arc::clone(&ex);
        std::thread::spawn(move || smol::block_on(ex.run(smol::future::pending::<()>())));
    }
    let rt = SmolRuntime::new({
        let ex = Arc::clone(&ex);
        move |task| ex.spawn(task).detach()
    });
    smol::block_on(ex.run(async move {
        let listener = match listen_arg() {
            Listen::Tcp(a) => Listener::bind_tcp(a).await?,
            Listen::Unix(p) => Listener::bind_unix(p)?,
        };
        let mut options = ServerOptions::default();
        options.core.multiplex = true;
        fcgi_smol::server(rt, options)
            .serve(listener, hello())
            .await
    }))
}
