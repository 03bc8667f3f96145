//! A FastCGI application without async code, as Go's `fcgi.Serve` does: the handler reads
//! the body with `Read` and writes the response with `Write` (`fcgi_smol::blocking`).
//!
//! ```text
//! cargo run -p fcgi-smol --example blocking [-- ADDR]    # default 127.0.0.1:9000
//! REQUEST_URI=/x cgi-fcgi -bind -connect 127.0.0.1:9000  # (libfcgi-bin) prints the page
//! ```

use std::io::Write;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let addr = addr.parse().map_err(std::io::Error::other)?;
    fcgi_smol::blocking::serve_tcp(addr, |req, out| {
        let uri = req
            .params()
            .get_str("REQUEST_URI")
            .unwrap_or("/")
            .to_owned();
        let page = format!("Content-Type: text/plain\r\n\r\nhello from {uri}\n");
        out.write_all(page.as_bytes()).map_or(1, |()| 0)
    })
}
