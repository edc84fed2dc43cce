//! `alg.two-capture-diff`: the same SIP messages captured on both sides of a NAT/SIP-ALG
//! router (`sipscope analyze inside.pcap outside.pcap --vantage`), paired and compared
//! field by field, so the report says exactly what the router changed.
//!
//! Pairing: Call-ID, CSeq number and method, the request method or status code, and the
//! n-th copy (retransmissions pair in order). Frames of the second capture are cited as
//! `2:N` (file 2 of the command line).

use super::call_subject;
use crate::rules::catalogue::rule;
use crate::rules::{Evidence, finding};
use crate::sdp::Sdp;
use crate::sip::state::{MsgKind, MsgRecord};
use crate::sip::wire::HeaderName;
use crate::types::FrameRef;
use std::collections::HashMap;

type Key = (String, u32, String, String, usize);

fn kind_text(k: &MsgKind) -> String {
    match k {
        MsgKind::Request { method, .. } => method.as_str().to_string(),
        MsgKind::Response { code, .. } => code.to_string(),
    }
}

fn keys<'a>(msgs: &'a [MsgRecord], call_id: &str) -> Vec<(Key, &'a MsgRecord)> {
    let mut seen: HashMap<(u32, String, String), usize> = HashMap::new();
    msgs.iter()
        .map(|m| {
            let (seq, meth) = m
                .cseq
                .as_ref()
                .map(|c| (c.seq, c.method.as_str().to_string()))
                .unwrap_or_default();
            let k = kind_text(&m.kind);
            let n = seen.entry((seq, meth.clone(), k.clone())).or_default();
            *n += 1;
            ((call_id.to_string(), seq, meth, k, *n), m)
        })
        .collect()
}

/// The fields an ALG rewrites, as (name, value) pairs in a stable order.
fn fields(m: &MsgRecord) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let MsgKind::Request { uri, .. } = &m.kind {
        v.push(("Request-URI", uri.clone()));
    }
    if let Some(via) = m.msg.vias().first() {
        v.push((
            "Via sent-by",
            format!(
                "{}{}",
                via.host,
                via.port.map(|p| format!(":{p}")).unwrap_or_default()
            ),
        ));
    }
    if let Some(c) = m.msg.contacts().first() {
        v.push(("Contact", c.uri.clone()));
    }
    for (name, kind) in [("From", HeaderName::From), ("To", HeaderName::To)] {
        if let Some(h) = m.msg.header_value(kind) {
            v.push((name, h.into_owned()));
        }
    }
    let body = m.msg.body_bytes().len();
    if let Some(cl) = m.msg.content_length() {
        v.push((
            "Content-Length",
            if cl == body {
                cl.to_string()
            } else {
                format!("{cl} (body has {body})")
            },
        ));
    }
    if let Some(sdp) = &m.sdp {
        push_sdp(&mut v, sdp);
    }
    v
}

fn push_sdp(v: &mut Vec<(&'static str, String)>, sdp: &Sdp) {
    if let Some(o) = &sdp.origin {
        v.push(("SDP o=", o.addr.clone()));
    }
    if let Some(c) = sdp.audio().and_then(|m| sdp.media_connection(m)) {
        v.push(("SDP c=", c.addr.clone()));
    }
    for m in &sdp.media {
        v.push(("SDP m=", format!("{} {}", m.kind, m.port)));
    }
}

fn far(f: FrameRef) -> FrameRef {
    FrameRef::new(2, f.num)
}

rule! {
    TwoCaptureDiff {
        id: "alg.two-capture-diff",
        severity: Warning,
        title: "A router changed SIP/SDP between two capture points",
        explanation: "The same SIP message, captured on both sides of a router (phone side and provider side), differs in the fields a SIP ALG rewrites: Via, Contact, SDP c=/o=/m=, Content-Length. Some rewriting is what NAT needs; inconsistent or wrong rewriting (a Contact rewritten but not the SDP, a port that carries no media, a Content-Length left stale) is why calls break behind that router.",
        remediation: "If the rewrite is wrong or partial, disable the router's SIP ALG and make the phone NAT-aware itself (STUN, rport, public address); if it is needed, make it complete (both SDP c= and m=, Contact and Via).",
        thresholds: "only with --vantage: any difference in Request-URI, Via sent-by, Contact, From/To, Content-Length, SDP o=/c=/m=",
    } |cx, out, meta| {
        let Some(other) = cx.vantage else { return };
        let theirs: HashMap<&str, &crate::correlate::Call> = other.calls.iter().map(|c| (c.sip.call_id.as_str(), c)).collect();
        for c in &cx.analysis.calls {
            let Some(oc) = theirs.get(c.sip.call_id.as_str()) else { continue };
            let far_msgs: HashMap<Key, &MsgRecord> = keys(&oc.sip.messages, &c.sip.call_id).into_iter().collect();
            let mut ev: Vec<Evidence> = Vec::new();
            let mut changed: Vec<&'static str> = Vec::new();
            let mut paired = 0;
            for (k, m) in keys(&c.sip.messages, &c.sip.call_id) {
                let Some(fm) = far_msgs.get(&k) else { continue };
                paired += 1;
                let a = fields(m);
                let b = fields(fm);
                for (name, va) in &a {
                    let vb = b.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
                    if vb != Some(va.as_str()) {
                        if ev.len() < 12 {
                            ev.push(cx.ev(m.frame, m.ts, format!("{} {}: {name} {va} → {} (frame {})", kind_text(&m.kind), m.msg.text(&m.msg.start_line).chars().take(40).collect::<String>(), vb.unwrap_or("(absent)"), far(fm.frame))));
                        }
                        if !changed.contains(name) {
                            changed.push(name);
                        }
                    }
                }
            }
            if !changed.is_empty() {
                out.push(finding(meta, call_subject(c), format!("{paired} messages paired across the two captures; changed: {}", changed.join(", ")), ev));
            }
        }
    }
}
