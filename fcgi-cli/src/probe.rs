//! `fcgi probe`: what an application declares (`FCGI_GET_VALUES`: `FCGI_MAX_CONNS`,
//! `FCGI_MAX_REQS`, `FCGI_MPXS_CONNS`) and what it really does with two requests on one
//! connection.
//!
//! The check: request 1 is a `POST` whose one body byte is held back, so the application
//! cannot finish it; request 2, a `GET`, goes on the same connection at once. If request 2 is
//! answered while request 1 waits, the application multiplexes. If not, request 1's body is
//! released: request 2 answered after it means the application handles a connection's
//! requests one after the other (queued); `END_REQUEST` with `CANT_MPX_CONN`, or the
//! connection closed, means it refuses a second request on a busy connection.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use fcgi_tokio::Backend;
use fcgi_tokio::client::{ClientError, ClientRequest, ClientResponse, Multiplexing, RequestBody};
use serde::Serialize;

use crate::connect::{client_options, parse_backend, parse_seconds};
use crate::exit::Exit;

/// The values asked for.
const NAMES: [&str; 3] = ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"];

/// `fcgi probe`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application: tcp:HOST:PORT, unix:PATH, HOST:PORT, or an absolute socket path.
    #[arg(long, value_parser = parse_backend)]
    connect: Backend,
    /// The script the two test requests name (any answer will do, a 404 too).
    #[arg(long, default_value = "/")]
    path: String,
    /// The document root as the application sees it.
    #[arg(long, default_value = "/var/www/html")]
    root: String,
    /// The longest wait for each answer, in seconds.
    #[arg(long, default_value = "5", value_parser = parse_seconds, value_name = "SECS")]
    timeout: Duration,
    /// Report on stdout as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What two requests on one connection showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Behaviour {
    /// The second request was answered while the first was still waiting for its body.
    Multiplexed,
    /// The second request was answered after the first ended.
    Queued,
    /// The second request was refused (`CANT_MPX_CONN`, `OVERLOADED`, or the connection
    /// closed).
    Refused,
    /// The check could not run (no connection, no answer at all).
    Unknown,
}

#[derive(Debug, Serialize)]
struct Report {
    connect: String,
    /// The values declared, or `None` when `GET_VALUES` got no answer.
    values: Option<BTreeMap<String, String>>,
    values_error: Option<String>,
    behaviour: Behaviour,
    detail: String,
    exit: u8,
}

/// Runs `fcgi probe`.
pub(crate) async fn run(args: Args) -> Exit {
    let (values, values_error) = match get_values(&args).await {
        Ok(values) => (Some(values), None),
        Err(e) => (None, Some(e)),
    };
    let (behaviour, detail, exit) = two_on_one(&args).await;
    let report = Report {
        connect: args.connect.to_string(),
        values,
        values_error,
        behaviour,
        detail,
        exit: exit.code(),
    };
    if args.json {
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("fcgi probe: {e}"),
        }
    } else {
        println!("{}", report.connect);
        match (&report.values, &report.values_error) {
            (Some(values), _) => {
                let shown: Vec<String> = NAMES
                    .iter()
                    .map(|name| match values.get(*name) {
                        Some(v) => format!("{name}={v}"),
                        None => format!("{name} (not declared)"),
                    })
                    .collect();
                println!("  declares (GET_VALUES): {}", shown.join(", "));
            }
            (None, Some(e)) => println!("  declares (GET_VALUES): no answer ({e})"),
            (None, None) => {}
        }
        println!(
            "  two requests on one connection: {} ({})",
            match behaviour {
                Behaviour::Multiplexed => "multiplexed",
                Behaviour::Queued => "queued",
                Behaviour::Refused => "refused",
                Behaviour::Unknown => "unknown",
            },
            report.detail
        );
    }
    exit
}

async fn get_values(args: &Args) -> Result<BTreeMap<String, String>, String> {
    let mut options = client_options(args.timeout);
    options.max_connections = 1;
    let client = fcgi_tokio::client(args.connect.clone(), options);
    let names: Vec<&[u8]> = NAMES.iter().map(|n| n.as_bytes()).collect();
    let values = client.get_values(&names).await.map_err(|e| e.to_string())?;
    Ok(values
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect())
}

/// The two-requests check (see the [module docs](self)).
async fn two_on_one(args: &Args) -> (Behaviour, String, Exit) {
    let mut options = client_options(args.timeout);
    options.max_connections = 1;
    options.multiplexing = Multiplexing::On(2);
    let client = fcgi_tokio::client(args.connect.clone(), options);
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    let body = futures_util::stream::once(async move {
        // Released, or the probe gave up (the sender dropped): the byte goes either way.
        let _ = held.await;
        Ok::<_, std::io::Error>(Bytes::from_static(b"x"))
    });
    let first = ClientRequest::php_fpm("POST", &args.root, &args.path, "")
        .param("CONTENT_LENGTH", "1")
        .param("CONTENT_TYPE", "application/octet-stream")
        .stdin(RequestBody::stream(body))
        .retry_on_dead_connection(false);
    let first = match client.send(first).await {
        Ok(response) => response,
        Err(e) => return (Behaviour::Unknown, e.to_string(), Exit::of_client_error(&e)),
    };
    let second =
        ClientRequest::php_fpm("GET", &args.root, &args.path, "").retry_on_dead_connection(false);
    let mut second = match client.send(second).await {
        Ok(response) => response,
        Err(e) => {
            return (
                Behaviour::Refused,
                format!("the second request could not be sent: {e}"),
                Exit::Ok,
            );
        }
    };
    // A second of grace (or less under a shorter timeout) for the second answer while the
    // first waits.
    let window = args.timeout.min(Duration::from_secs(1));
    let early = tokio::time::timeout(window, second.chunk()).await;
    match early {
        Ok(Some(Ok(_)) | None) => {
            let _ = release.send(());
            let _ = drain(first).await;
            return (
                Behaviour::Multiplexed,
                "the second was answered while the first waited for its body".into(),
                Exit::Ok,
            );
        }
        Ok(Some(Err(e))) => {
            let _ = release.send(());
            return refused(&e);
        }
        Err(_) => {}
    }
    let _ = release.send(());
    let first_outcome = drain(first).await;
    match tokio::time::timeout(args.timeout, drain(second)).await {
        Ok(Ok(())) => (
            Behaviour::Queued,
            format!(
                "the second was answered only after the first ended{}",
                match first_outcome {
                    Ok(()) => String::new(),
                    Err(e) => format!("; the first failed: {e}"),
                }
            ),
            Exit::Ok,
        ),
        Ok(Err(e)) => refused(&e),
        Err(_) => (
            Behaviour::Unknown,
            "no answer to the second request".into(),
            Exit::Timeout,
        ),
    }
}

fn refused(e: &ClientError) -> (Behaviour, String, Exit) {
    let why = match e {
        ClientError::CantMpxConn => "END_REQUEST CANT_MPX_CONN".to_owned(),
        ClientError::Overloaded => "END_REQUEST OVERLOADED".to_owned(),
        ClientError::Truncated | ClientError::Io(_) => "the connection closed".to_owned(),
        other => other.to_string(),
    };
    (Behaviour::Refused, why, Exit::Ok)
}

/// Reads a response to its end.
async fn drain(mut response: ClientResponse) -> Result<(), ClientError> {
    while let Some(piece) = response.chunk().await {
        piece?;
    }
    response.finish().await.map(|_| ())
}
