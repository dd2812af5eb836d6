//! Who may open a bridge, and to which target: [`admit`] decides from a request's parts alone,
//! admitted or refused with a reason (status, metric, message), so each rule is table-tested
//! without sockets ([`tests`](self)).
//!
//! Owns: the WebSocket handshake's checks ([`handshake`]), the Origin check ([`origin`]), the
//! token ([`token_ok`]), and the allow-list of targets ([`target`]).
//!
//! Leaves to others: the state of the relay at the time of the request (shutting down, at
//! `--max-conns`) and the 101 answer ([`crate::http`]); the bridge itself ([`crate::bridge`]).

pub mod handshake;
pub mod origin;
pub mod target;
#[cfg(test)]
mod tests;
pub mod tokens;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;

use crate::bridge::Dest;
use crate::metrics::RefusalReason;
pub use handshake::is_plain_authority;
use handshake::{ambiguity, header_has_token, is_valid_key};
use origin::OriginPolicy;
use target::AllowList;
use tokens::{LookupError, TokenTargets};

/// The relay's admission settings.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub allow: &'a AllowList,
    pub origin: &'a OriginPolicy,
    /// `--token`.
    pub token: Option<&'a str>,
    /// Whether the relay serves https/wss (for the same-origin check).
    pub tls: bool,
    /// `--target-tokens`: when set, `?token=` names a target, and the auth token comes as
    /// `?auth=` or `Authorization: Bearer`.
    pub tokens: Option<&'a TokenTargets>,
}

/// What [`admit`] looks at of a `GET /ws` request.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// The query string, without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// The subprotocol of clients that want to know when the target is connected (the page socket
/// library, whose `opened` settles then): the bridge's first message is a text message
/// `connected`, sent once the target is; a target that cannot be reached ends the bridge with
/// its Close (1011) before it. Everything else is as without it: the target's bytes come in
/// binary messages, the client's go to the target.
pub const CONNECTED: &str = "sockrelay.connected";

/// An admitted request: where its bridge goes, and what the 101 needs.
#[derive(Debug)]
pub struct Admitted {
    pub target: Dest,
    /// `Sec-WebSocket-Key`, valid.
    pub key: HeaderValue,
    /// The client offered the `binary` subprotocol.
    pub binary: bool,
    /// The client offered the [`CONNECTED`] subprotocol: it is told when the target is
    /// connected.
    pub announce: bool,
    /// The token line that named the target asks for a PROXY protocol v2 header. Other
    /// bridges get one too when the address they reach opted in, however it was named: that is
    /// decided where they connect ([`crate::proxy_protocol`]), not here.
    pub proxy_protocol: bool,
}

/// A refused request: the status and `{"error": message}` body it is answered with, the reason
/// counted in the metrics, and a header that tells the client what to do.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: RefusalReason,
    pub message: String,
    pub header: Option<(HeaderName, &'static str)>,
}

impl Refusal {
    pub fn new(status: StatusCode, reason: RefusalReason, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            message: message.into(),
            header: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, RefusalReason::BadRequest, message)
    }

    pub fn with_header(self, name: HeaderName, value: &'static str) -> Refusal {
        Refusal {
            header: Some((name, value)),
            ..self
        }
    }
}

/// The query of `/ws` and `/api/*`.
#[derive(Debug, Default, Deserialize)]
pub struct Query {
    pub target: Option<String>,
    /// The auth token (`--token`), or with `--target-tokens` on a bridge, the target's token.
    pub token: Option<String>,
    /// The auth token, always: what a page sends when `?token=` names a target.
    pub auth: Option<String>,
}

impl Query {
    /// The auth tokens this query carries: `?auth=`, and `?token=` unless it names a target.
    pub fn auth_tokens(&self, token_names_target: bool) -> [Option<&str>; 2] {
        let token = self.token.as_deref().filter(|_| !token_names_target);
        [self.auth.as_deref(), token]
    }
}

impl Query {
    /// Parses a query string (without the `?`); the error says what is wrong with it.
    pub fn parse(q: &str) -> Result<Query, String> {
        let uri: axum::http::Uri = format!("/?{q}")
            .parse()
            .map_err(|_| "malformed query string".to_owned())?;
        axum::extract::Query::<Query>::try_from_uri(&uri)
            .map(|axum::extract::Query(q)| q)
            .map_err(|e| format!("malformed query string: {}", e.body_text()))
    }
}

/// Decides whether a `GET /ws` request may open a bridge, and to which target. The checks run
/// in this order, and the first that fails answers: the upgrade headers, ambiguous headers, the
/// WebSocket version and key, a body, the query, the Origin, the token, the target.
pub async fn admit(rules: Rules<'_>, request: Parts<'_>) -> Result<Admitted, Refusal> {
    let headers = request.headers;
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        let message = "this endpoint is a WebSocket: connect with a WebSocket client \
                       (Connection: Upgrade, Upgrade: websocket)";
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            RefusalReason::BadRequest,
            message,
        )
        .with_header(header::UPGRADE, "websocket"));
    }
    if let Some(message) = ambiguity(headers) {
        return Err(Refusal::bad_request(message));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let message = "unsupported or missing Sec-WebSocket-Version: this relay speaks version 13";
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            RefusalReason::BadRequest,
            message,
        )
        .with_header(header::SEC_WEBSOCKET_VERSION, "13"));
    }
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| is_valid_key(k.as_bytes()))
        .cloned()
    else {
        return Err(Refusal::bad_request(
            "missing or invalid Sec-WebSocket-Key (must be 16 bytes, base64)",
        ));
    };
    // An upgrade request has no body; one that claims a body (both framings even) is a request
    // smuggling attempt or a broken client, and proxies in front would disagree about it.
    if headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
    {
        return Err(Refusal::bad_request(
            "a WebSocket upgrade request must not have a body",
        ));
    }
    let query = match request.query {
        None => Query::default(),
        Some(q) => Query::parse(q).map_err(Refusal::bad_request)?,
    };
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Err(message) = rules.origin.check(origin, host, rules.tls) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            RefusalReason::Origin,
            message,
        ));
    }
    if let Some(expected) = rules.token {
        let given = query.auth_tokens(rules.tokens.is_some());
        if !given
            .iter()
            .any(|&given| token_ok(expected, given, headers))
        {
            let message = if rules.tokens.is_some() {
                "this relay requires a token: add ?auth=... to the URL (?token= names the target)"
            } else {
                "this relay requires a token: add ?token=... to the URL"
            };
            return Err(
                Refusal::new(StatusCode::UNAUTHORIZED, RefusalReason::Token, message)
                    .with_header(header::WWW_AUTHENTICATE, "Bearer"),
            );
        }
    }
    let (target, proxy_protocol) = choose_target(rules, &query).await?;
    let offered = |name: &str| {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == name)
    };
    Ok(Admitted {
        target,
        key,
        binary: offered("binary"),
        announce: offered(CONNECTED),
        proxy_protocol,
    })
}

/// The target a request names: by `?token=` with `--target-tokens` (and whether its line asks
/// for a PROXY header), by `?target=`, or the default one.
async fn choose_target(rules: Rules<'_>, query: &Query) -> Result<(Dest, bool), Refusal> {
    let refuse =
        |message: String| Refusal::new(StatusCode::FORBIDDEN, RefusalReason::Target, message);
    let target_token = rules.tokens.zip(query.token.as_deref());
    match (&query.target, target_token) {
        (Some(_), Some(_)) => Err(Refusal::bad_request(
            "give either ?target= or ?token= (a target's token), not both",
        )),
        (None, Some((tokens, token))) => match tokens.lookup(token).await {
            Ok(t) => Ok((t.dest(), t.proxy_protocol)),
            Err(e @ LookupError::Unknown) => Err(refuse(e.to_string())),
            // The token file cannot be read, or the token's name does not resolve now.
            Err(e) => Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                RefusalReason::Target,
                e.to_string(),
            )),
        },
        (Some(t), None) => Ok((
            rules
                .allow
                .check(t)
                .await
                .map_err(|e| refuse(e.to_string()))?,
            false,
        )),
        // Without built-ins and `--allow` entries (websockify with a token plugin), only
        // tokens lead anywhere.
        (None, None) if rules.allow.list().is_empty() => Err(refuse(
            "this relay bridges to token targets only: add ?token=NAME".into(),
        )),
        (None, None) => Ok((rules.allow.default_target(), false)),
    }
}

/// Checks the token from `?token=` or `Authorization: Bearer`, in constant time. The scheme's
/// name is case-insensitive (RFC 9110, 11.1); one space separates it from the token.
pub fn token_ok(expected: &str, query: Option<&str>, headers: &HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    if headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        // Two sets of credentials: a proxy in front could have checked the other one.
        return false;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        // `1*SP` between scheme and credentials (RFC 9110, 11.4).
        .map(|(_, token)| token.trim_start_matches(' '));
    [query, bearer]
        .into_iter()
        .flatten()
        .any(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}
