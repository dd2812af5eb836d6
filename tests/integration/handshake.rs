//! Strict handshakes (RFC 6455 4.2.1, RFC 9112 3.2), the token on every endpoint that needs it,
//! and the headers every page and asset carries.
