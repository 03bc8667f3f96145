//! Where the application is (`--connect`), and the FastCGI client every subcommand uses.

use std::time::Duration;

use fcgi_tokio::Backend;
use fcgi_tokio::client::{ClientOptions, Multiplexing};

/// `--connect`: `tcp:HOST:PORT`, `unix:PATH`, a bare `HOST:PORT` or a bare absolute path.
/// A host name is resolved at each connection.
pub(crate) fn parse_backend(text: &str) -> Result<Backend, String> {
    text.parse::<Backend>().map_err(|e| e.to_string())
}

/// `--timeout SECS` (fractions allowed): a positive, finite number of seconds.
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!(
            "{text:?}: expected more than 0 and at most 86400 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Client options for a command bounded by `timeout`: connecting, waiting for a pooled
/// connection and for each piece of the answer each take at most that long.
pub(crate) fn client_options(timeout: Duration) -> ClientOptions {
    let mut options = ClientOptions::default();
    options.connect_timeout = timeout;
    options.pool_timeout = timeout;
    options.read_timeout = timeout;
    options.write_timeout = timeout;
    // One request at a time per connection unless a command asks for more.
    options.multiplexing = Multiplexing::Off;
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_forms() {
        assert!(matches!(
            parse_backend("tcp:127.0.0.1:9000"),
            Ok(Backend::Tcp(_))
        ));
        assert!(matches!(
            parse_backend("127.0.0.1:9000"),
            Ok(Backend::Tcp(_))
        ));
        assert!(matches!(
            parse_backend("php:9000"),
            Ok(Backend::Name { .. })
        ));
        assert!(matches!(
            parse_backend("unix:/run/php.sock"),
            Ok(Backend::Unix(_))
        ));
        assert!(matches!(
            parse_backend("/run/php.sock"),
            Ok(Backend::Unix(_))
        ));
        assert!(parse_backend("nonsense").is_err());
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
