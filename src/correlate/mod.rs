//! Joins SIP calls and RTP streams into the analysis model that the rules read and the
//! report renders: every stream is attached to the call whose SDP announced it (`sdp`),
//! or — when NAT translated the addresses — to the call whose signalling peer it comes
//! from or goes to while the call was up (`nat`, symmetric RTP / latching), or to a call
//! whose signalling hosts it flows between (`heuristic`). Streams nobody announced stay
//! orphans. The model records *why* each stream was attached. Once built it is immutable.

mod attach;
mod model;
pub use attach::{
    Association, CallIndex, CallKey, GRACE_NS, SETTLE_NS, StreamKey, attach, sdp_endpoints,
};
pub use model::*;
