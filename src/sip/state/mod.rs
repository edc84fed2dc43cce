//! SIP protocol state rebuilt from messages: transactions (RFC 3261 §17 matching by top
//! Via branch, RFC 2543 fallback), retransmission marking with Wireshark's `sip.resend`
//! semantics, calls (INVITE dialogs keyed by Call-ID, forking, CANCEL, BYE), registrations
//! (per AOR + contact), out-of-dialog requests (OPTIONS, MESSAGE, ...), `sip,stat`
//! counters, and the requests by source address the security rules judge ([`sources`]).
//!
//! Single owner: one `SipState` per Call-ID shard; every table is capped, and idle
//! entries are finalised on the capture clock ([`SipState::expire`]).

use crate::sdp::Sdp;
use crate::sip::wire::{AuthInfo, CSeq, Method, NameAddr, SipMessage};
use crate::types::{Anomaly, Endpoint, FiveTuple, FrameRef, Transport, Ts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

mod call;
#[cfg(test)]
mod corpus_tests;
mod machine;
mod reg;
pub mod sources;
mod wsstat;
pub use machine::{SipState, message_sdp, report_order};
pub use wsstat::ws_code_bucket;

/// One SIP message as delivered to the state machines.
#[derive(Debug, Clone, Copy)]
pub struct SipPacket<'a> {
    pub msg: &'a Arc<SipMessage>,
    pub frame: FrameRef,
    pub ts: Ts,
    pub tuple: FiveTuple,
    /// Size of the SIP message in bytes.
    pub size: usize,
    /// Carried in IP fragments (for `sip.oversize-udp`).
    pub fragmented: bool,
    /// The message's SDP, parsed once by the caller ([`message_sdp`]), which also needs
    /// it (the engine announces its media endpoints).
    pub sdp: Option<&'a Arc<crate::sdp::Sdp>>,
}

/// Caps and timers (capture clock).
#[derive(Debug, Clone, Copy)]
pub struct SipLimits {
    pub max_calls: usize,
    /// Finished calls held for the report until drained; later ones are only counted
    /// (`calls_not_kept` in `capture.limits_hit`). A streaming run (`--format json`)
    /// drains them to its on-disk spill, so this bounds what waits between drains and a
    /// run that keeps its whole report in memory. Calls that never got any response may
    /// fill half of it, counted over the whole capture, streaming or not.
    pub max_kept_calls: usize,
    /// Finished out-of-dialog transactions kept for the report.
    pub max_kept_out_of_dialog: usize,
    pub max_registrations: usize,
    pub max_out_of_dialog: usize,
    /// A call with no message for this long is finalised (and no longer matched).
    pub call_idle_timeout_ms: i64,
    /// A call whose dialog has ended (BYE, or its INVITE refused or cancelled) is
    /// finalised after this long without a message: 64·T1, the longest an RFC 3261
    /// transaction retransmits (Timer B/F/H). A later message with its Call-ID starts
    /// afresh (some UAs reuse Call-IDs for new calls).
    pub ended_call_linger_ms: i64,
    /// The same for a call whose INVITE was refused with a digest challenge (401/407):
    /// the retry with credentials belongs to the call, and a softphone may wait for a
    /// person to type the password (tens of seconds in the public captures).
    pub challenged_call_linger_ms: i64,
    /// RFC 3261 T1 (for Timer B/F = 64·T1 signatures).
    pub t1_ms: i64,
}

impl Default for SipLimits {
    fn default() -> Self {
        SipLimits {
            max_calls: 50_000,
            max_kept_calls: 50_000,
            max_kept_out_of_dialog: 50_000,
            max_registrations: 200_000,
            max_out_of_dialog: 200_000,
            call_idle_timeout_ms: 4 * 3600 * 1000,
            ended_call_linger_ms: 64 * 500,
            challenged_call_linger_ms: 10 * 60 * 1000,
            t1_ms: 500,
        }
    }
}

/// Wireshark VoIP Calls state vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallState {
    CallSetup,
    Ringing,
    InCall,
    Cancelled,
    Completed,
    Rejected,
    Unknown,
}

impl CallState {
    /// As Wireshark prints it ("CALL SETUP", "IN CALL", ...).
    pub fn label(self) -> &'static str {
        match self {
            CallState::CallSetup => "CALL SETUP",
            CallState::Ringing => "RINGING",
            CallState::InCall => "IN CALL",
            CallState::Cancelled => "CANCELLED",
            CallState::Completed => "COMPLETED",
            CallState::Rejected => "REJECTED",
            CallState::Unknown => "UNKNOWN",
        }
    }
}

/// Start line in short form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MsgKind {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

/// One SIP message of a call, registration or transaction.
#[derive(Debug, Clone)]
pub struct MsgRecord {
    pub frame: FrameRef,
    pub ts: Ts,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub transport: Transport,
    pub kind: MsgKind,
    pub cseq: Option<CSeq>,
    /// Top Via branch.
    pub branch: Option<String>,
    /// Wireshark's `sip.resend` for this frame.
    pub retransmission: bool,
    pub size: u32,
    pub fragmented: bool,
    /// The full message, for evidence (exact header lines).
    pub msg: Arc<SipMessage>,
    /// The parsed body when it is `application/sdp` (or an SDP-looking body).
    pub sdp: Option<Arc<Sdp>>,
}

/// A client transaction as seen on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    pub method: Method,
    pub cseq: u32,
    pub branch: Option<String>,
    pub first_frame: FrameRef,
    pub first_ts: Ts,
    pub last_request_ts: Ts,
    /// Request copies seen (1 + retransmissions).
    pub requests: u32,
    pub retransmissions: u32,
    /// Every response frame: (code, frame, ts, was a retransmission).
    pub responses: Vec<(u16, FrameRef, Ts, bool)>,
    pub final_code: Option<u16>,
    pub final_ts: Option<Ts>,
    /// Request source and destination.
    pub src: Endpoint,
    pub dst: Endpoint,
}

/// An SDP carried in a message of a call, with who sent it.
#[derive(Debug, Clone)]
pub struct SdpRef {
    pub frame: FrameRef,
    pub ts: Ts,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// Sent by the caller (the side that sent the initial INVITE).
    pub from_caller: bool,
    /// "INVITE", "200", "183", "UPDATE", "ACK", ...
    pub carried_in: String,
    pub sdp: Arc<Sdp>,
}

/// An offer with its answer (RFC 3264), in order: initial INVITE, early media, re-INVITEs.
#[derive(Debug, Clone)]
pub struct SdpExchange {
    pub offer: SdpRef,
    pub answer: Option<SdpRef>,
}

/// Who ended an answered call.
#[derive(Debug, Clone, Serialize)]
pub struct Hangup {
    pub frame: FrameRef,
    pub ts: Ts,
    pub by_caller: bool,
}

/// An INVITE-initiated call (one Call-ID; forked early dialogs listed by To tag).
#[derive(Debug, Clone)]
pub struct SipCall {
    pub call_id: String,
    pub from: NameAddr,
    pub to: NameAddr,
    /// Source and destination of the first INVITE.
    pub caller: Endpoint,
    pub callee: Endpoint,
    pub transport: Transport,
    pub state: CallState,
    /// Final response of the last INVITE transaction that decided the call (wire phrase kept).
    pub final_code: Option<u16>,
    pub final_reason: Option<String>,
    pub start: Ts,
    pub end: Ts,
    pub first_frame: FrameRef,
    /// First 18x.
    pub ringing_ts: Option<Ts>,
    /// First 2xx to an INVITE.
    pub answer_ts: Option<Ts>,
    /// First ACK for a 2xx.
    pub ack_ts: Option<Ts>,
    pub bye: Option<Hangup>,
    pub cancel: Option<(FrameRef, Ts)>,
    pub messages: Vec<MsgRecord>,
    pub transactions: Vec<Transaction>,
    pub sdp: Vec<SdpExchange>,
    /// To tags of every (early) dialog seen; several = forking.
    pub to_tags: Vec<String>,
    pub user_agent: Option<String>,
    pub server: Option<String>,
    /// Number of re-INVITEs: INVITE transactions inside the dialog after it was confirmed
    /// by a 2xx (retries with credentials after a 401/407 are not counted).
    pub reinvites: u32,
}

impl SipCall {
    /// Every SIP frame of the call, in order.
    pub fn frames(&self) -> Vec<FrameRef> {
        self.messages.iter().map(|m| m.frame).collect()
    }
    /// Post-dial delay: first INVITE → first 18x (or final response when no 18x), ms.
    pub fn post_dial_delay_ms(&self) -> Option<f64> {
        let first_resp = self.ringing_ts.or(self.answer_ts).or_else(|| {
            self.transactions
                .iter()
                .find(|t| t.method == Method::Invite)
                .and_then(|t| t.final_ts)
        })?;
        Some(first_resp.ms_since(self.start))
    }
    /// Seconds from answer to end (BYE or last message).
    pub fn duration_s(&self) -> Option<f64> {
        let a = self.answer_ts?;
        let e = self.bye.as_ref().map(|b| b.ts).unwrap_or(self.end);
        Some(e.secs_since(a))
    }
}

/// The registrar's answer to one REGISTER.
#[derive(Debug, Clone, Serialize)]
pub struct RegResponse {
    pub code: u16,
    pub reason: String,
    pub frame: FrameRef,
    pub ts: Ts,
    /// Granted expiry: the Contact's `expires` parameter for this contact, else Expires header.
    pub granted_expires: Option<u32>,
    pub challenge: Option<AuthInfo>,
    /// Min-Expires from a 423.
    pub min_expires: Option<u32>,
}

/// One REGISTER transaction.
#[derive(Debug, Clone, Serialize)]
pub struct RegAttempt {
    pub frame: FrameRef,
    pub ts: Ts,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub transport: Transport,
    pub call_id: String,
    pub cseq: u32,
    /// Requested expiry: Contact `expires` parameter, else Expires header.
    pub requested_expires: Option<u32>,
    /// Carried Authorization (username kept, secrets never).
    pub credentials: Option<AuthInfo>,
    pub retransmissions: u32,
    pub response: Option<RegResponse>,
    /// Contact `*` or expiry 0.
    pub unregister: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegState {
    /// Last attempt got a 2xx with non-zero expiry.
    Registered,
    /// Last attempt removed the binding.
    Unregistered,
    /// Last attempt was refused (after credentials, or a non-auth failure).
    Failed,
    /// Last attempt was challenged and no retry followed.
    Challenged,
    /// No response seen.
    NoResponse,
}

/// Registration of one contact for one address-of-record.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub aor: String,
    pub contact: String,
    pub user_agent: Option<String>,
    pub attempts: Vec<RegAttempt>,
    pub state: RegState,
}

/// An out-of-dialog request (OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, INFO, ...) and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct OutOfDialog {
    pub method: Method,
    /// CSeq number of the request (responses are matched by it).
    pub cseq: u32,
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// Transport of the request.
    pub transport: Transport,
    pub frame: FrameRef,
    pub ts: Ts,
    pub retransmissions: u32,
    pub response: Option<(u16, String, FrameRef, Ts)>,
    pub user_agent: Option<String>,
}

/// `-z sip,stat` equivalents.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SipStats {
    pub messages: u64,
    pub resent: u64,
    /// Method → count of request messages.
    pub requests: BTreeMap<String, u64>,
    /// Status code → count of response messages, bucketed like tshark: codes Wireshark does
    /// not know count under their class's x99 ([`ws_code_bucket`]); codes < 100 or ≥ 700 are
    /// not counted here (but are in `messages`).
    pub responses: BTreeMap<u16, u64>,
    /// INVITE → ACK setup times in ms (Wireshark's "setup time"): integer ms per ACK, zero
    /// values not counted, `avg` the integer average tshark prints.
    pub setup_time_ms: Option<SetupTimes>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct SetupTimes {
    pub count: u64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

/// Everything the SIP layer hands to correlation.
#[derive(Debug, Clone, Default)]
pub struct SipOutput {
    pub calls: Vec<SipCall>,
    pub registrations: Vec<Registration>,
    pub out_of_dialog: Vec<OutOfDialog>,
    pub stats: SipStats,
    /// Requests by source address, sorted by address ([`sources`]).
    pub sources: Vec<sources::SourceRequests>,
    pub anomalies: Vec<Anomaly>,
    /// Entries evicted because a table hit its cap: (table, count).
    pub evicted: Vec<(&'static str, u64)>,
}
