//! The Authorizer role (FastCGI spec §6.3): answers that grant or deny a request.
//!
//! # Protocol
//!
//! The web server (Apache `mod_authnz_fcgi`, lighttpd `mode = "authorizer"`) sends the
//! request's params — no body — and reads the answer as a CGI response:
//!
//! - **`200`** grants access. Each `Variable-NAME: value` header becomes the variable `NAME`
//!   of the request the web server then serves (an environment variable for a CGI script,
//!   a param for the next FastCGI application; Apache also sets `REMOTE_USER` from
//!   `Variable-REMOTE_USER` in its authenticator mode). The other headers and the body are
//!   ignored by the web server, so [`ServiceHandler`](super::ServiceHandler) does not send
//!   the body of a `200` at all (nor a `Content-Length` that would announce it): a
//!   service can use the same handler for every role without paying for a body nobody reads.
//! - **Any other status** denies, and that response — status, headers, body — goes to the
//!   HTTP client as it is: a `401` with `WWW-Authenticate`, a `403` page, a `302` to a login
//!   page.
//!
//! The service sees the role in the [`FcgiRequest`](super::FcgiRequest) extension; a service
//! written for the Authorizer role alone can ignore it.
//!
//! ```
//! use fcgi_http::app::authorizer;
//! use http_body_util::Empty;
//! use bytes::Bytes;
//!
//! let ok: http::Response<Empty<Bytes>> =
//!     authorizer::allow([("REMOTE_USER", "alice"), ("ROLE", "admin")])?;
//! assert_eq!(ok.status(), 200);
//! assert_eq!(ok.headers()["variable-remote_user"], "alice");
//! # Ok::<(), authorizer::InvalidVariable>(())
//! ```

use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};

/// [`allow`] was given a variable that cannot be sent: a name that is empty or holds a
/// character not allowed in a header name (letters, digits, `_`, `-`, `.` and a few others
/// are), or a value holding CR, LF or NUL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Authorizer variable {name:?}")]
pub struct InvalidVariable {
    /// The variable's name, as given.
    pub name: String,
}

/// A `200` answer granting access and passing `vars` to the web server as
/// `Variable-NAME: value` headers, with an empty body of type `B` (any body with a
/// `Default`, such as `http_body_util::Empty<Bytes>` or `axum::body::Body`).
///
/// Names are sent in upper case (see [`encode_head`](super::encode_head)); a repeated name
/// is sent once per value.
///
/// # Errors
///
/// [`InvalidVariable`] for the first name or value that cannot be a header.
pub fn allow<B, I, K, V>(vars: I) -> Result<Response<B>, InvalidVariable>
where
    B: Default,
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::OK;
    for (name, value) in vars {
        let name = name.as_ref();
        let invalid = || InvalidVariable {
            name: name.to_owned(),
        };
        if name.is_empty() {
            return Err(invalid());
        }
        let header = HeaderName::try_from(format!("variable-{name}")).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value.as_ref()).map_err(|_| invalid())?;
        response.headers_mut().append(header, value);
    }
    Ok(response)
}
