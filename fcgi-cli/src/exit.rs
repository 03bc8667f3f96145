//! The exit statuses of `fcgi`, in one place: what a shell script, a Docker `HEALTHCHECK` or
//! a Kubernetes exec probe reads. Where curl has a code for the same failure, it is curl's
//! (7: cannot connect, 8: a reply it cannot use, 28: timeout).

use std::process::ExitCode;

use fcgi_driver::client::ClientError;
#[cfg(test)]
use fcgi_driver::client::TimeoutKind;
use http::StatusCode;

/// How `fcgi` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: a 2xx answer (or: the probe, the benchmark or the server ran as asked).
    Ok,
    /// 1: anything else that went wrong (a local file unreadable, a socket not bindable).
    Failure,
    /// 2: bad arguments (clap's usage errors use it too).
    Usage,
    /// 3: the application answered 3xx (or a CGI local redirect).
    Redirect,
    /// 4: the application answered 4xx (for an Authorizer: access denied).
    ClientError,
    /// 5: the application answered 5xx, or `END_REQUEST` with `OVERLOADED`.
    ServerError,
    /// 7: no connection to the application (refused, no such socket, unreachable).
    Connect,
    /// 8: an answer that is not usable FastCGI/CGI: a protocol error, a connection cut
    /// before `END_REQUEST`, a malformed response head, an unknown role, ...
    Protocol,
    /// 28: the timeout expired (connecting or waiting for the answer).
    Timeout,
}

impl Exit {
    /// The process exit status.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::Redirect => 3,
            Self::ClientError => 4,
            Self::ServerError => 5,
            Self::Connect => 7,
            Self::Protocol => 8,
            Self::Timeout => 28,
        }
    }

    /// The exit for an answer with `status`.
    pub(crate) fn of_status(status: StatusCode) -> Self {
        match status.as_u16() {
            200..=299 => Self::Ok,
            300..=399 => Self::Redirect,
            400..=499 => Self::ClientError,
            // 1xx is no final answer for a CGI response: treated as unusable.
            500..=599 => Self::ServerError,
            _ => Self::Protocol,
        }
    }

    /// The exit for a failed FastCGI exchange.
    pub(crate) fn of_client_error(error: &ClientError) -> Self {
        match error {
            ClientError::Connect { .. } => Self::Connect,
            ClientError::Timeout(_) => Self::Timeout,
            ClientError::Overloaded => Self::ServerError,
            ClientError::InvalidRequest(_) => Self::Usage,
            _ => Self::Protocol,
        }
    }

    /// A short name, for `--json` reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failure => "failure",
            Self::Usage => "usage",
            Self::Redirect => "redirect",
            Self::ClientError => "client-error",
            Self::ServerError => "server-error",
            Self::Connect => "connect",
            Self::Protocol => "protocol",
            Self::Timeout => "timeout",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// The table printed at the end of `fcgi --help` and `fcgi request --help`.
pub(crate) const EXIT_STATUS_HELP: &str = "\
Exit status:
   0  a 2xx answer (probe, bench, echo: ran as asked)
   1  a local failure (unreadable file, address in use, ...)
   2  bad arguments
   3  a 3xx answer (or a CGI local redirect)
   4  a 4xx answer (Authorizer: denied)
   5  a 5xx answer, or the application is OVERLOADED
   7  cannot connect (refused, no such socket)
   8  not a usable FastCGI answer (protocol error, cut off, bad head)
  28  timeout";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_their_class() {
        assert_eq!(Exit::of_status(StatusCode::OK), Exit::Ok);
        assert_eq!(Exit::of_status(StatusCode::NO_CONTENT), Exit::Ok);
        assert_eq!(Exit::of_status(StatusCode::FOUND), Exit::Redirect);
        assert_eq!(Exit::of_status(StatusCode::NOT_FOUND), Exit::ClientError);
        assert_eq!(Exit::of_status(StatusCode::BAD_GATEWAY), Exit::ServerError);
        assert_eq!(Exit::of_status(StatusCode::CONTINUE), Exit::Protocol);
    }

    #[test]
    fn client_errors_map_to_curl_like_codes() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            Exit::of_client_error(&ClientError::Connect {
                backend: None,
                source: refused
            })
            .code(),
            7
        );
        let connect_timeout = ClientError::Timeout(TimeoutKind::Connect);
        assert_eq!(Exit::of_client_error(&connect_timeout).code(), 28);
        assert_eq!(
            Exit::of_client_error(&ClientError::Timeout(TimeoutKind::Read)).code(),
            28
        );
        assert_eq!(Exit::of_client_error(&ClientError::Truncated).code(), 8);
        assert_eq!(Exit::of_client_error(&ClientError::Overloaded).code(), 5);
        assert_eq!(Exit::of_client_error(&ClientError::UnknownRole).code(), 8);
    }
}
