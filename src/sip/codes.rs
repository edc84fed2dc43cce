//! Every IANA-registered SIP response code (plus RFC 2543's 409 and 411, still seen from
//! old equipment) with its canonical reason phrase and a one-line practical explanation,
//! and the bucketing `tshark -z sip,stat` applies to codes it does not know.
//!
//! Phrases follow Wireshark where Wireshark names the code (so 422 is "Session Timer Too
//! Small", 500 "Server Internal Error", 504 "Server Time-out"), else the IANA registry.
//! [`sipstat_phrase`] reproduces what tshark 4.0.17 — the version that produced the
//! reference outputs in `../shared/pcaps` — prints: its table lacks 199 (printed as the 1xx
//! bucket "Informational - Others"), 409, 411, 417, 424, 425, 469, 555 and 580, which it
//! buckets into x99 per class. (Newer Wireshark releases name 199, 417, 424, 469 and 580.)

/// One registered response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: u16,
    /// Canonical reason phrase (as Wireshark prints it in `sip,stat`).
    pub phrase: &'static str,
    /// What it means in practice and the likely next step.
    pub meaning: &'static str,
    /// Whether tshark 4.0.17's `sip,stat` table lists this code under its own phrase (when
    /// false, it is counted in the class bucket x99; see [`sipstat_phrase`]).
    pub in_tshark_sipstat: bool,
}

/// Look up a code.
pub fn lookup(code: u16) -> Option<&'static CodeInfo> {
    CODES
        .binary_search_by_key(&code, |c| c.code)
        .ok()
        .and_then(|i| CODES.get(i))
}

/// The class of a code ("Client Error" for 4xx, ...); "Invalid" outside 100..=699.
pub fn class_name(code: u16) -> &'static str {
    match code {
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        600..=699 => "Global Failure",
        _ => "Invalid",
    }
}

/// Phrase for a code that is not in the table: "Unknown 4xx" style ("Unknown" outside
/// 100..=699).
pub fn class_phrase(code: u16) -> &'static str {
    match code {
        100..=199 => "Unknown 1xx",
        200..=299 => "Unknown 2xx",
        300..=399 => "Unknown 3xx",
        400..=499 => "Unknown 4xx",
        500..=599 => "Unknown 5xx",
        600..=699 => "Unknown 6xx",
        _ => "Unknown",
    }
}

/// Canonical phrase of a code, or its [`class_phrase`] when it is not registered.
pub fn phrase(code: u16) -> &'static str {
    lookup(code)
        .map(|c| c.phrase)
        .unwrap_or_else(|| class_phrase(code))
}

/// What `tshark -z sip,stat` (4.0.17) prints for a response code: the code it is counted
/// under and the phrase, e.g. `(487, "Request Terminated")`, or `(499, "Client Error -
/// Others")` for a code its table lacks. `None` for codes below 100 or from 700 up, which
/// sip,stat drops.
pub fn sipstat_phrase(code: u16) -> Option<(u16, &'static str)> {
    if !(100..700).contains(&code) {
        return None;
    }
    if let Some(c) = lookup(code).filter(|c| c.in_tshark_sipstat) {
        return Some((c.code, c.phrase));
    }
    let bucket = code / 100 * 100 + 99;
    let name = match code / 100 {
        1 => "Informational - Others",
        2 => "Success - Others",
        3 => "Redirection - Others",
        4 => "Client Error - Others",
        5 => "Server Error - Others",
        _ => "Global Failure - Others",
    };
    Some((bucket, name))
}

/// All codes, ascending.
pub static CODES: &[CodeInfo] = &[
    CodeInfo {
        code: 100,
        phrase: "Trying",
        in_tshark_sipstat: true,
        meaning: "Next hop received the request and is working on it; it only stops INVITE retransmissions. No 100 at all over UDP means the request did not arrive (firewall, wrong address or port).",
    },
    CodeInfo {
        code: 180,
        phrase: "Ringing",
        in_tshark_sipstat: true,
        meaning: "Callee is being alerted. A 180 with no audio is normal (the caller plays local ringback); ringback stuck here means nobody answers: expect 408/480/487 next.",
    },
    CodeInfo {
        code: 181,
        phrase: "Call Is Being Forwarded",
        in_tshark_sipstat: true,
        meaning: "Callee forwarded the call elsewhere (call forwarding). Informational; the final answer comes from the forwarding target.",
    },
    CodeInfo {
        code: 182,
        phrase: "Queued",
        in_tshark_sipstat: true,
        meaning: "Callee is busy but the call is queued (call-centre queue). Wait for a later response.",
    },
    CodeInfo {
        code: 183,
        phrase: "Session Progress",
        in_tshark_sipstat: true,
        meaning: "Early media: the SDP in it sets up audio before answer (ringback tones, announcements). One-way or no audio here points at NAT/firewall on the early-media RTP.",
    },
    CodeInfo {
        code: 199,
        phrase: "Early Dialog Terminated",
        in_tshark_sipstat: false,
        meaning: "An early dialog (forked branch) ended before a final response (RFC 6228). Normal with forking; the call may still succeed on another branch.",
    },
    CodeInfo {
        code: 200,
        phrase: "OK",
        in_tshark_sipstat: true,
        meaning: "Success. For INVITE the call is answered and must be ACKed; repeated 200s without ACK mean the ACK is lost (NAT, wrong Contact/Record-Route).",
    },
    CodeInfo {
        code: 202,
        phrase: "Accepted",
        in_tshark_sipstat: true,
        meaning: "Request accepted for later processing (REFER, SUBSCRIBE; deprecated by RFC 6665 for new uses). Watch for the NOTIFY that reports the outcome.",
    },
    CodeInfo {
        code: 204,
        phrase: "No Notification",
        in_tshark_sipstat: true,
        meaning: "Subscription accepted but no NOTIFY will be sent (RFC 5839). Informational.",
    },
    CodeInfo {
        code: 300,
        phrase: "Multiple Choices",
        in_tshark_sipstat: true,
        meaning: "Several possible destinations are listed in Contact; the caller or proxy must pick one. Usually a redirect server answer.",
    },
    CodeInfo {
        code: 301,
        phrase: "Moved Permanently",
        in_tshark_sipstat: true,
        meaning: "User is no longer at this address; the Contact gives the new one. Update the dialled URI or the proxy configuration.",
    },
    CodeInfo {
        code: 302,
        phrase: "Moved Temporarily",
        in_tshark_sipstat: true,
        meaning: "Redirect: retry at the URI in Contact (call forwarding done by redirect). A phone or PBX that does not follow redirects shows this as a failed call.",
    },
    CodeInfo {
        code: 305,
        phrase: "Use Proxy",
        in_tshark_sipstat: true,
        meaning: "Request must go through the proxy named in Contact. Rare; usually a routing configuration mismatch.",
    },
    CodeInfo {
        code: 380,
        phrase: "Alternative Service",
        in_tshark_sipstat: true,
        meaning: "Call failed but an alternative service is possible (e.g. emergency call redirection); see the body.",
    },
    CodeInfo {
        code: 400,
        phrase: "Bad Request",
        in_tshark_sipstat: true,
        meaning: "Malformed request (syntax, missing or bad header). Check the request for bad headers, wrong Content-Length or an ALG that rewrote it.",
    },
    CodeInfo {
        code: 401,
        phrase: "Unauthorized",
        in_tshark_sipstat: true,
        meaning: "Normal digest challenge from a registrar or UA: the client should retry with Authorization. Repeated 401 after credentials were sent means wrong username or password.",
    },
    CodeInfo {
        code: 402,
        phrase: "Payment Required",
        in_tshark_sipstat: true,
        meaning: "Reserved; some providers use it for no credit on the account. Check the account balance.",
    },
    CodeInfo {
        code: 403,
        phrase: "Forbidden",
        in_tshark_sipstat: true,
        meaning: "Understood but refused, retrying with credentials will not help: wrong password after challenge, account disabled, number not allowed, IP not whitelisted or no credit. The reason phrase usually says which.",
    },
    CodeInfo {
        code: 404,
        phrase: "Not Found",
        in_tshark_sipstat: true,
        meaning: "Callee or account does not exist in this domain: wrong number, wrong domain, or unregistered user. Check the dialled number format.",
    },
    CodeInfo {
        code: 405,
        phrase: "Method Not Allowed",
        in_tshark_sipstat: true,
        meaning: "The method is not supported for this address (Allow lists what is). Often a PBX rejecting MESSAGE, INFO or SUBSCRIBE.",
    },
    CodeInfo {
        code: 406,
        phrase: "Not Acceptable",
        in_tshark_sipstat: true,
        meaning: "The response would not satisfy the Accept headers; some providers use it for no common codec. Check codecs and Accept.",
    },
    CodeInfo {
        code: 407,
        phrase: "Proxy Authentication Required",
        in_tshark_sipstat: true,
        meaning: "Digest challenge from a proxy: retry with Proxy-Authorization. Repeated 407 after credentials means wrong credentials or realm.",
    },
    CodeInfo {
        code: 408,
        phrase: "Request Timeout",
        in_tshark_sipstat: true,
        meaning: "No final response in time: callee did not answer or could not be reached (unregistered phone, dead NAT binding). Check the callee registration and keepalives.",
    },
    CodeInfo {
        code: 409,
        phrase: "Conflict",
        in_tshark_sipstat: false,
        meaning: "RFC 2543 (historic, not in RFC 3261): conflicting request, e.g. a registration already in use. Rare in modern equipment.",
    },
    CodeInfo {
        code: 410,
        phrase: "Gone",
        in_tshark_sipstat: true,
        meaning: "User existed but is permanently unavailable here (number disconnected). No forwarding address is known.",
    },
    CodeInfo {
        code: 411,
        phrase: "Length Required",
        in_tshark_sipstat: false,
        meaning: "RFC 2543 (historic): the server requires a Content-Length. Add Content-Length; over TCP it is mandatory anyway.",
    },
    CodeInfo {
        code: 412,
        phrase: "Conditional Request Failed",
        in_tshark_sipstat: true,
        meaning: "A PUBLISH refresh referenced an unknown entity-tag (RFC 3903): the publisher must publish again from scratch.",
    },
    CodeInfo {
        code: 413,
        phrase: "Request Entity Too Large",
        in_tshark_sipstat: true,
        meaning: "Body too large for the server. Usually an oversized SDP or MESSAGE body; also seen with UDP fragmentation trouble.",
    },
    CodeInfo {
        code: 414,
        phrase: "Request-URI Too Long",
        in_tshark_sipstat: true,
        meaning: "Request-URI longer than the server accepts. Check for looping or appended URI parameters.",
    },
    CodeInfo {
        code: 415,
        phrase: "Unsupported Media Type",
        in_tshark_sipstat: true,
        meaning: "Body type or encoding not supported (see Accept/Accept-Encoding); some providers use it for no media. Check the Content-Type of the body.",
    },
    CodeInfo {
        code: 416,
        phrase: "Unsupported URI Scheme",
        in_tshark_sipstat: true,
        meaning: "The Request-URI scheme is not supported (e.g. sips: or tel: where only sip: works). Fix the dial plan.",
    },
    CodeInfo {
        code: 417,
        phrase: "Unknown Resource-Priority",
        in_tshark_sipstat: false,
        meaning: "Resource-Priority header not understood (RFC 4412). Remove or fix the priority namespace.",
    },
    CodeInfo {
        code: 420,
        phrase: "Bad Extension",
        in_tshark_sipstat: true,
        meaning: "A Require/Proxy-Require option tag is not supported (Unsupported lists which). Disable that extension (often 100rel or timer) on the caller.",
    },
    CodeInfo {
        code: 421,
        phrase: "Extension Required",
        in_tshark_sipstat: true,
        meaning: "The server needs an extension the request did not list (Require tells which). Enable it (often 100rel or timer).",
    },
    CodeInfo {
        code: 422,
        phrase: "Session Timer Too Small",
        in_tshark_sipstat: true,
        meaning: "Session-Expires below the server's Min-SE (RFC 4028); the caller should retry with the Min-SE value. Loops of 422 mean the retry is broken.",
    },
    CodeInfo {
        code: 423,
        phrase: "Interval Too Brief",
        in_tshark_sipstat: true,
        meaning: "Registration Expires below the registrar's Min-Expires; the client must retry with at least that value.",
    },
    CodeInfo {
        code: 424,
        phrase: "Bad Location Information",
        in_tshark_sipstat: false,
        meaning: "Location conveyed in the request (RFC 6442, emergency calls) is malformed or unusable.",
    },
    CodeInfo {
        code: 425,
        phrase: "Bad Alert Message",
        in_tshark_sipstat: false,
        meaning: "Alert-Info or alert body rejected (RFC 8876, emergency alerts).",
    },
    CodeInfo {
        code: 428,
        phrase: "Use Identity Header",
        in_tshark_sipstat: true,
        meaning: "Server requires an Identity header (STIR/SHAKEN, RFC 8224). The originating network must sign the call.",
    },
    CodeInfo {
        code: 429,
        phrase: "Provide Referrer Identity",
        in_tshark_sipstat: true,
        meaning: "REFER needs a valid Referred-By token (RFC 3892).",
    },
    CodeInfo {
        code: 430,
        phrase: "Flow Failed",
        in_tshark_sipstat: true,
        meaning: "An outbound flow (RFC 5626) to the UA is broken; the edge proxy lost the connection. The UA must re-register.",
    },
    CodeInfo {
        code: 433,
        phrase: "Anonymity Disallowed",
        in_tshark_sipstat: true,
        meaning: "Callee rejects anonymous calls (RFC 5079). Send caller ID (remove Privacy: id) or call another way.",
    },
    CodeInfo {
        code: 436,
        phrase: "Bad Identity-Info",
        in_tshark_sipstat: true,
        meaning: "Identity-Info URI cannot be dereferenced or is unsupported (RFC 4474 / 8224).",
    },
    CodeInfo {
        code: 437,
        phrase: "Unsupported Certificate",
        in_tshark_sipstat: true,
        meaning: "Certificate for the Identity signature cannot be validated.",
    },
    CodeInfo {
        code: 438,
        phrase: "Invalid Identity Header",
        in_tshark_sipstat: true,
        meaning: "Identity signature does not verify (STIR/SHAKEN): headers changed in transit or a bad certificate.",
    },
    CodeInfo {
        code: 439,
        phrase: "First Hop Lacks Outbound Support",
        in_tshark_sipstat: true,
        meaning: "UA wants SIP Outbound (RFC 5626) but the first-hop proxy does not support it.",
    },
    CodeInfo {
        code: 440,
        phrase: "Max-Breadth Exceeded",
        in_tshark_sipstat: true,
        meaning: "Parallel forking exceeded Max-Breadth (RFC 5393): a forking loop or amplification.",
    },
    CodeInfo {
        code: 469,
        phrase: "Bad Info Package",
        in_tshark_sipstat: false,
        meaning: "INFO with an Info-Package the receiver did not agree to (RFC 6086): typically DTMF via INFO not negotiated. Use RFC 4733 DTMF or enable the package.",
    },
    CodeInfo {
        code: 470,
        phrase: "Consent Needed",
        in_tshark_sipstat: true,
        meaning: "Recipient has not consented to receive requests from this relay (RFC 5360).",
    },
    CodeInfo {
        code: 480,
        phrase: "Temporarily Unavailable",
        in_tshark_sipstat: true,
        meaning: "Callee reachable in principle but not now: not registered, do-not-disturb, no answer policy; providers also use it for routing or credit failures (see the reason phrase). Retry later or check registration.",
    },
    CodeInfo {
        code: 481,
        phrase: "Call/Transaction Does Not Exist",
        in_tshark_sipstat: true,
        meaning: "Request for a dialog or transaction the receiver does not know. Normal for a late retransmission or duplicate; in a running call it means the two sides lost sync (e.g. BYE/re-INVITE after a restart or to the wrong address).",
    },
    CodeInfo {
        code: 482,
        phrase: "Loop Detected",
        in_tshark_sipstat: true,
        meaning: "Request came back to a server it already passed (own Via seen). Routing loop between proxies/PBX and provider; check routes and forwarding.",
    },
    CodeInfo {
        code: 483,
        phrase: "Too Many Hops",
        in_tshark_sipstat: true,
        meaning: "Max-Forwards reached zero: routing loop or a very long proxy chain.",
    },
    CodeInfo {
        code: 484,
        phrase: "Address Incomplete",
        in_tshark_sipstat: true,
        meaning: "Dialled number too short/incomplete (overlap dialling). Check the number format and dial plan.",
    },
    CodeInfo {
        code: 485,
        phrase: "Ambiguous",
        in_tshark_sipstat: true,
        meaning: "The Request-URI matches several users; the response may list candidates.",
    },
    CodeInfo {
        code: 486,
        phrase: "Busy Here",
        in_tshark_sipstat: true,
        meaning: "Callee busy at this device. Normal call outcome; other devices of the user might still be free.",
    },
    CodeInfo {
        code: 487,
        phrase: "Request Terminated",
        in_tshark_sipstat: true,
        meaning: "The INVITE was cancelled (CANCEL or BYE from the caller) before answer. Normal when the caller hangs up while it rings.",
    },
    CodeInfo {
        code: 488,
        phrase: "Not Acceptable Here",
        in_tshark_sipstat: true,
        meaning: "The SDP offer is not acceptable: no common codec, unsupported media or encryption (SRTP/RTP mismatch), or a private IP in SDP rejected by the provider. Compare both sides' codecs and crypto.",
    },
    CodeInfo {
        code: 489,
        phrase: "Bad Event",
        in_tshark_sipstat: true,
        meaning: "SUBSCRIBE/PUBLISH for an event package the server does not support (e.g. presence, message-summary). Usually harmless phone feature probing.",
    },
    CodeInfo {
        code: 491,
        phrase: "Request Pending",
        in_tshark_sipstat: true,
        meaning: "Glare: both sides sent a re-INVITE/UPDATE at the same time. Each side retries after a random delay; repeated 491 means the retry logic is broken.",
    },
    CodeInfo {
        code: 493,
        phrase: "Undecipherable",
        in_tshark_sipstat: true,
        meaning: "Could not decrypt an S/MIME body.",
    },
    CodeInfo {
        code: 494,
        phrase: "Security Agreement Required",
        in_tshark_sipstat: true,
        meaning: "Server requires a security mechanism agreement (RFC 3329, e.g. IMS IPsec) first.",
    },
    CodeInfo {
        code: 500,
        phrase: "Server Internal Error",
        in_tshark_sipstat: true,
        meaning: "The server failed while processing the request (software fault, database error; see the reason phrase). Retry after Retry-After or contact the provider.",
    },
    CodeInfo {
        code: 501,
        phrase: "Not Implemented",
        in_tshark_sipstat: true,
        meaning: "The server does not implement the method at all. Usually harmless for optional methods (MESSAGE, SUBSCRIBE, INFO).",
    },
    CodeInfo {
        code: 502,
        phrase: "Bad Gateway",
        in_tshark_sipstat: true,
        meaning: "A gateway or proxy got an invalid response from the next hop. The trouble is further downstream (carrier or gateway).",
    },
    CodeInfo {
        code: 503,
        phrase: "Service Unavailable",
        in_tshark_sipstat: true,
        meaning: "Server overloaded, in maintenance, or no route/trunk available; clients should try another server (DNS SRV) or wait for Retry-After. Persistent 503 often means the trunk or registration is down.",
    },
    CodeInfo {
        code: 504,
        phrase: "Server Time-out",
        in_tshark_sipstat: true,
        meaning: "A downstream server did not answer in time (or DNS failed). The fault is beyond this server: carrier, DNS or a dead next hop.",
    },
    CodeInfo {
        code: 505,
        phrase: "Version Not Supported",
        in_tshark_sipstat: true,
        meaning: "The SIP version in the request is not supported: corrupt start line or non-SIP/2.0 traffic.",
    },
    CodeInfo {
        code: 513,
        phrase: "Message Too Large",
        in_tshark_sipstat: true,
        meaning: "Message too large for the server (often UDP beyond MTU with fragments dropped). Switch to TCP or shrink the SDP/headers.",
    },
    CodeInfo {
        code: 555,
        phrase: "Push Notification Service Not Supported",
        in_tshark_sipstat: false,
        meaning: "The push notification service requested in the REGISTER is not supported (RFC 8599).",
    },
    CodeInfo {
        code: 580,
        phrase: "Precondition Failure",
        in_tshark_sipstat: false,
        meaning: "Required preconditions (RFC 3312, QoS reservation) could not be met. Disable preconditions or fix the QoS setup.",
    },
    CodeInfo {
        code: 600,
        phrase: "Busy Everywhere",
        in_tshark_sipstat: true,
        meaning: "Callee busy on all devices and does not want other destinations tried.",
    },
    CodeInfo {
        code: 603,
        phrase: "Decline",
        in_tshark_sipstat: true,
        meaning: "Callee explicitly rejected the call (reject button, call screening). Normal call outcome.",
    },
    CodeInfo {
        code: 604,
        phrase: "Does Not Exist Anywhere",
        in_tshark_sipstat: true,
        meaning: "Callee authoritatively does not exist anywhere. Check the number.",
    },
    CodeInfo {
        code: 606,
        phrase: "Not Acceptable",
        in_tshark_sipstat: true,
        meaning: "The callee cannot accept the session at all (media or capabilities). Compare the offered SDP with what the callee supports.",
    },
    CodeInfo {
        code: 607,
        phrase: "Unwanted",
        in_tshark_sipstat: true,
        meaning: "Callee marked the call as unwanted (spam/robocall, RFC 8197).",
    },
    CodeInfo {
        code: 608,
        phrase: "Rejected",
        in_tshark_sipstat: true,
        meaning: "An intermediary (call-blocking analytics) rejected the call (RFC 8688); the caller may contact the listed party to dispute it.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sorted_unique_in_range() {
        assert!(CODES.len() >= 77);
        for w in CODES.windows(2) {
            assert!(w[0].code < w[1].code, "{} before {}", w[0].code, w[1].code);
        }
        for c in CODES {
            assert!((100..700).contains(&c.code), "{}", c.code);
            assert!(!c.phrase.is_empty() && !c.meaning.is_empty(), "{}", c.code);
        }
    }

    #[test]
    fn every_code_the_brief_lists_is_present() {
        let want = [
            100, 180, 181, 182, 183, 199, 200, 202, 204, 300, 301, 302, 305, 380, 400, 401, 402,
            403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 420, 421,
            422, 423, 424, 425, 428, 429, 430, 433, 436, 437, 438, 439, 440, 469, 470, 480, 481,
            482, 483, 484, 485, 486, 487, 488, 489, 491, 493, 494, 500, 501, 502, 503, 504, 505,
            513, 555, 580, 600, 603, 604, 606, 607, 608,
        ];
        for c in want {
            assert!(lookup(c).is_some(), "{c} missing");
        }
        assert_eq!(CODES.len(), want.len());
    }

    #[test]
    fn lookups_and_phrases() {
        assert_eq!(lookup(183).map(|c| c.phrase), Some("Session Progress"));
        assert_eq!(lookup(487).map(|c| c.phrase), Some("Request Terminated"));
        assert_eq!(lookup(488).map(|c| c.phrase), Some("Not Acceptable Here"));
        assert_eq!(
            lookup(481).map(|c| c.phrase),
            Some("Call/Transaction Does Not Exist")
        );
        assert!(lookup(499).is_none());
        assert_eq!(phrase(499), "Unknown 4xx");
        assert_eq!(phrase(200), "OK");
        assert_eq!(class_phrase(700), "Unknown");
        assert_eq!(class_name(503), "Server Error");
    }

    #[test]
    fn sipstat_buckets_like_tshark_4_0() {
        // Observed with tshark 4.0.17 on a synthetic capture of every code.
        assert_eq!(sipstat_phrase(487), Some((487, "Request Terminated")));
        assert_eq!(sipstat_phrase(608), Some((608, "Rejected")));
        assert_eq!(sipstat_phrase(199), Some((199, "Informational - Others")));
        assert_eq!(sipstat_phrase(170), Some((199, "Informational - Others")));
        assert_eq!(sipstat_phrase(250), Some((299, "Success - Others")));
        assert_eq!(sipstat_phrase(409), Some((499, "Client Error - Others")));
        assert_eq!(sipstat_phrase(580), Some((599, "Server Error - Others")));
        assert_eq!(sipstat_phrase(650), Some((699, "Global Failure - Others")));
        assert_eq!(sipstat_phrase(99), None);
        assert_eq!(sipstat_phrase(700), None);
    }
}
