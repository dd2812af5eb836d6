//! Connections that never finish their request head, above the connection cap: the relay keeps
//! serving everybody else.
