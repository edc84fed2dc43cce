//! SIP: the tolerant wire parser ([`wire`]), the response-code table ([`codes`]) and the
//! protocol state built from messages ([`state`]: transactions, dialogs, registrations).

pub mod codes;
pub mod state;
pub mod wire;
