//! Rule families, one file each. Shared helpers for subjects and evidence live here.

pub mod capture;
pub mod media;
pub mod nat;
pub mod policy;
pub mod qos;
pub mod reg;
pub mod security;
pub mod sip;
pub mod vantage;

use crate::correlate::{Call, Stream};
use crate::rules::Subject;
use crate::sip::state::MsgRecord;
use crate::sip::wire::HeaderName;

pub(crate) fn call_subject(c: &Call) -> Subject {
    Subject::Call {
        call_id: c.sip.call_id.clone(),
    }
}

pub(crate) fn stream_subject(s: &Stream) -> Subject {
    Subject::Stream {
        ssrc: format!("0x{:08X}", s.ssrc),
        src: s.src.to_string(),
        dst: s.dst.to_string(),
    }
}

/// The start line of a message, quoted, with its direction.
pub(crate) fn start_line(m: &MsgRecord) -> String {
    format!("{} → {}: {}", m.src, m.dst, m.msg.text(&m.msg.start_line))
}

/// The first header line of a kind, exactly as sent.
pub(crate) fn header_line(m: &MsgRecord, kind: HeaderName) -> Option<String> {
    m.msg
        .header(kind)
        .map(|h| m.msg.text(&h.line).trim_end().to_string())
}

pub(crate) fn fmt_s(x: f64) -> String {
    format!("{x:.1} s")
}
