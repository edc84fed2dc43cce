//! RFC 4733 telephone-event (DTMF) decoding.
//!
//! Owns: the 4-byte event payload (event code, E bit, volume, duration), the event code →
//! digit names, and folding of the packets of one event (same RTP timestamp: start
//! packets, updates, and the usually three end-of-event retransmissions) into a single
//! [`DtmfEvent`].

use crate::types::{FrameRef, Ts};
use serde::Serialize;

/// One digit/event as sent (end-of-event retransmissions folded into one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DtmfEvent {
    /// "0"-"9", "*", "#", "A"-"D", "flash", or "event N".
    pub digit: String,
    pub frame: FrameRef,
    pub ts: Ts,
    /// Duration field of the end packet, in ms at the stream's clock (8000 Hz when unknown).
    pub duration_ms: f64,
    pub volume: u8,
    /// An end-of-event packet was seen.
    pub ended: bool,
}

/// Events kept per stream; a crafted stream with more distinct timestamps is truncated.
const MAX_EVENTS: usize = 10_000;

/// Collects events of one telephone-event stream.
#[derive(Debug, Clone, Default)]
pub struct EventTracker {
    pub events: Vec<DtmfEvent>,
    /// RTP timestamp of each entry of `events` (same index).
    keys: Vec<u32>,
    /// Payloads that were too short to be an event.
    pub malformed: u64,
}

/// A decoded RFC 4733 §2.3 payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

/// Decode the first 4 bytes of a telephone-event payload (RFC 2198 redundancy and
/// multiple events per packet are not split; the first event is taken).
pub fn parse_event(payload: &[u8]) -> Option<EventPayload> {
    let (&event, &b1, &d0, &d1) = (
        payload.first()?,
        payload.get(1)?,
        payload.get(2)?,
        payload.get(3)?,
    );
    Some(EventPayload {
        event,
        end: b1 & 0x80 != 0,
        volume: b1 & 0x3F,
        duration: u16::from_be_bytes([d0, d1]),
    })
}

/// RFC 4733 §3.2 DTMF names; other codes are "event N".
pub fn event_name(code: u8) -> String {
    match code {
        0..=9 => char::from(b'0' + code).to_string(),
        10 => "*".into(),
        11 => "#".into(),
        12..=15 => char::from(b'A' + code - 12).to_string(),
        16 => "flash".into(),
        n => format!("event {n}"),
    }
}

impl EventTracker {
    /// Feed one telephone-event payload with its RTP timestamp (events are keyed by it).
    pub fn update(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        rtp_timestamp: u32,
        payload: &[u8],
        clock_rate: u32,
    ) {
        let Some(ev) = parse_event(payload) else {
            self.malformed = self.malformed.saturating_add(1);
            return;
        };
        let rate = if clock_rate == 0 {
            8000.0
        } else {
            f64::from(clock_rate)
        };
        let duration_ms = f64::from(ev.duration) * 1000.0 / rate;
        // Packets of one event are contiguous; look back a few events only (O(1)), which
        // also folds retransmissions that arrive after the next event started.
        let start = self.keys.len().saturating_sub(4);
        let found = self
            .keys
            .get(start..)
            .and_then(|k| k.iter().rposition(|&t| t == rtp_timestamp))
            .map(|i| i + start);
        if let Some(e) = found.and_then(|i| self.events.get_mut(i)) {
            if ev.end || !e.ended {
                e.duration_ms = e.duration_ms.max(duration_ms);
            }
            e.ended |= ev.end;
            e.volume = ev.volume;
            return;
        }
        if self.events.len() >= MAX_EVENTS {
            return;
        }
        self.keys.push(rtp_timestamp);
        self.events.push(DtmfEvent {
            digit: event_name(ev.event),
            frame,
            ts,
            duration_ms,
            volume: ev.volume,
            ended: ev.end,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_payload() {
        let e = parse_event(&[11, 0x80 | 10, 0x03, 0x20]).expect("4 bytes");
        assert_eq!(
            e,
            EventPayload {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert!(parse_event(&[1, 2, 3]).is_none());
        assert_eq!(event_name(10), "*");
        assert_eq!(event_name(15), "D");
        assert_eq!(event_name(16), "flash");
        assert_eq!(event_name(42), "event 42");
    }

    #[test]
    fn folds_one_event() {
        let mut t = EventTracker::default();
        for (i, (end, dur)) in [
            (false, 160u16),
            (false, 320),
            (false, 480),
            (true, 640),
            (true, 640),
            (true, 640),
        ]
        .iter()
        .enumerate()
        {
            let d = dur.to_be_bytes();
            t.update(
                FrameRef::new(0, i as u64 + 1),
                Ts(i as i64),
                1000,
                &[5, if *end { 0x8A } else { 0x0A }, d[0], d[1]],
                8000,
            );
        }
        t.update(FrameRef::new(0, 9), Ts(9), 9000, &[7, 0x0A, 0, 160], 8000);
        t.update(FrameRef::new(0, 10), Ts(10), 9000, &[7], 8000);
        assert_eq!(t.events.len(), 2);
        assert_eq!(t.malformed, 1);
        let e = &t.events[0];
        assert_eq!(e.digit, "5");
        assert!(e.ended);
        assert_eq!(e.frame, FrameRef::new(0, 1));
        assert!((e.duration_ms - 80.0).abs() < 1e-9);
        assert!(!t.events[1].ended);
        assert_eq!(t.events[1].digit, "7");
    }

    /// SIPp's dtmf_2833_<digit>.pcap files: the digit must match the file name.
    #[test]
    fn sipp_dtmf_captures() {
        let dir = std::path::Path::new("../shared/pcaps/SIPp__sipp");
        if !dir.is_dir() {
            eprintln!("SKIP: ../shared/pcaps/SIPp__sipp not found");
            return;
        }
        let names = [
            ("0", "0"),
            ("1", "1"),
            ("2", "2"),
            ("3", "3"),
            ("4", "4"),
            ("5", "5"),
            ("6", "6"),
            ("7", "7"),
            ("8", "8"),
            ("9", "9"),
            ("pound", "#"),
            ("star", "*"),
        ];
        for (suffix, digit) in names {
            let p = dir.join(format!("pcap__dtmf_2833_{suffix}.pcap"));
            let Ok(bytes) = std::fs::read(&p) else {
                eprintln!("SKIP: {} missing", p.display());
                continue;
            };
            let mut t = EventTracker::default();
            for (num, ts, payload) in super::super::tshark_check::udp_payloads(&bytes)
                .into_iter()
                .take(10_000)
            {
                if let Some(h) = super::super::parse_rtp(&payload) {
                    t.update(
                        FrameRef::new(0, num),
                        ts,
                        h.timestamp,
                        h.payload(&payload),
                        8000,
                    );
                }
            }
            assert_eq!(t.events.len(), 1, "{suffix}: {:?}", t.events);
            assert_eq!(t.events[0].digit, digit, "{suffix}");
            assert!(t.events[0].ended, "{suffix}");
            assert!(t.events[0].duration_ms > 0.0);
        }
    }
}
