//! Report rows (calls, streams, findings) kept on disk instead of in memory until they are
//! written.
//!
//! Owns: [`RowSpill`], the temporary file a streaming engine appends a [`CallOut`],
//! [`StreamOut`] or call-local [`Finding`] to as each call or stream is finalised, and
//! reads back at the end in report order (calls by first frame then Call-ID, streams by
//! discovery order, findings by [`crate::rules::finding_order`]). Rows are the part of the report that
//! grows with the capture; spilling them keeps memory at the size of the index (one key,
//! offset and length per row; a finding's key is its severity, subject and rule),
//! whatever the capture's length. A finding's row holds its rule id, summary and
//! evidence; its explanation and remediation come back from the rule's metadata.
//!
//! Call and stream rows are stored as the report shows them (`model::render_row`: pretty
//! JSON indented for their place in the report), so writing the report copies their bytes
//! instead of parsing and printing every row again on the thread that writes it, after
//! the last packet (the serial tail of a run). Findings are stored as compact JSON: they
//! are merged with the findings kept in memory, and written from the merge. Any row can
//! also be read back: parsing it and pretty-printing it gives exactly the bytes
//! pretty-printing the original row gives (`tests/spill.rs` checks it on every fixture
//! and public capture): the row types deserialise every form they serialise to,
//! non-finite floats written as `null` come back as NaN, and floats are parsed exactly
//! (serde_json's `float_roundtrip`). Each row is followed by a newline.
//!
//! The file is anonymous (`tempfile::tempfile`): the operating system removes it when the
//! handle closes, on a panic or an exit too.

use super::model::{CallOut, StreamOut, render_row};
use crate::rules::{Evidence, Finding, Severity, Subject, meta_of, sort_key};
use crate::types::FrameRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// How a row is stored.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// Compact JSON: rows that are read back and merged before they are written.
    Compact,
    /// As the report shows it ([`render_row`]): rows copied into the report as they are.
    Rendered,
}

/// Where one row lies in the file.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    len: u64,
}

/// Rows written to a temporary file as they are produced, read back in report order.
pub struct RowSpill {
    w: BufWriter<File>,
    /// Bytes written so far (the next row's offset).
    end: u64,
    /// A read moved the file's cursor: the next write must seek back to `end` first.
    moved: bool,
    calls: Vec<((FrameRef, String), Span)>,
    streams: Vec<(u64, Span)>,
    findings: Vec<(FindingKey, Span)>,
    scratch: Vec<u8>,
}

/// What sorts a spilled finding (see [`crate::rules::finding_order`]).
#[derive(Debug)]
struct FindingKey {
    severity: Severity,
    subject: Subject,
    rule: &'static str,
}

/// A finding's row: what is not in its key or its rule's metadata.
#[derive(Serialize)]
struct FindingRow<'a> {
    rule: &'a str,
    summary: &'a str,
    evidence: &'a [Evidence],
}

#[derive(Deserialize)]
struct FindingRowOwned {
    rule: String,
    summary: String,
    evidence: Vec<Evidence>,
}

impl std::fmt::Debug for RowSpill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowSpill")
            .field("bytes", &self.end)
            .field("calls", &self.calls.len())
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl RowSpill {
    /// An empty spill over a new anonymous temporary file.
    pub fn new() -> io::Result<RowSpill> {
        Ok(RowSpill {
            w: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            end: 0,
            moved: false,
            calls: Vec::new(),
            streams: Vec::new(),
            findings: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Store a call row under its report key: its first frame, then its Call-ID.
    pub fn push_call(&mut self, key: (FrameRef, String), row: &CallOut) -> io::Result<()> {
        let span = self.write_row(row, Form::Rendered)?;
        self.calls.push((key, span));
        Ok(())
    }

    /// Store a stream row under its discovery order.
    pub fn push_stream(&mut self, order: u64, row: &StreamOut) -> io::Result<()> {
        let span = self.write_row(row, Form::Rendered)?;
        self.streams.push((order, span));
        Ok(())
    }

    /// Store a finding (its subject and severity stay in memory as its key).
    pub fn push_finding(&mut self, f: Finding) -> io::Result<()> {
        let span = self.write_row(
            &FindingRow {
                rule: f.rule,
                summary: &f.summary,
                evidence: &f.evidence,
            },
            Form::Compact,
        )?;
        let key = FindingKey {
            severity: f.severity,
            subject: f.subject,
            rule: f.rule,
        };
        self.findings.push((key, span));
        Ok(())
    }

    /// Findings stored.
    pub fn findings(&self) -> usize {
        self.findings.len()
    }

    /// Findings back in report order ([`crate::rules::finding_order`]; equal ones in push order), read
    /// one at a time.
    pub fn findings_sorted(
        &mut self,
    ) -> io::Result<impl Iterator<Item = io::Result<Finding>> + '_> {
        self.prepare_read()?;
        self.findings.sort_by(|(a, _), (b, _)| order_keys(a, b));
        let keys = self.findings.iter().map(|(k, _)| k);
        let rows = read_rows(self.w.get_ref(), self.findings.iter().map(|(_, s)| *s));
        Ok(keys.zip(rows).map(|(k, row)| {
            let row: FindingRowOwned = row?;
            let meta = meta_of(&row.rule)
                .filter(|m| m.id == k.rule)
                .ok_or_else(|| {
                    io::Error::other(format!("spilled finding of unknown rule {}", row.rule))
                })?;
            Ok(Finding {
                rule: meta.id,
                severity: k.severity,
                subject: k.subject.clone(),
                summary: row.summary,
                explanation: meta.explanation,
                remediation: meta.remediation,
                evidence: row.evidence,
            })
        }))
    }

    /// Call rows stored.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Stream rows stored.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Call rows back sorted by key (first frame, then Call-ID; equal keys in push order),
    /// read one at a time.
    pub fn calls_sorted(&mut self) -> io::Result<impl Iterator<Item = io::Result<CallOut>> + '_> {
        let (file, spans) = self.call_spans()?;
        Ok(read_rows(file, spans))
    }

    /// Stream rows back sorted by discovery order (equal orders in push order), read one
    /// at a time.
    pub fn streams_sorted(
        &mut self,
    ) -> io::Result<impl Iterator<Item = io::Result<StreamOut>> + '_> {
        let (file, spans) = self.stream_spans()?;
        Ok(read_rows(file, spans))
    }

    /// Call rows as stored (rendered), in [`RowSpill::calls_sorted`]'s order, each handed
    /// to `f`.
    pub fn each_call_rendered(&mut self, f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let (file, spans) = self.call_spans()?;
        each_raw(file, spans, f)
    }

    /// Stream rows as stored (rendered), in [`RowSpill::streams_sorted`]'s order, each
    /// handed to `f`.
    pub fn each_stream_rendered(
        &mut self,
        f: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let (file, spans) = self.stream_spans()?;
        each_raw(file, spans, f)
    }

    /// The file, ready to read, and the call rows' spans in report order.
    fn call_spans(&mut self) -> io::Result<(&File, impl Iterator<Item = Span> + '_)> {
        self.prepare_read()?;
        self.calls.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((self.w.get_ref(), self.calls.iter().map(|(_, s)| *s)))
    }

    /// The file, ready to read, and the stream rows' spans in report order.
    fn stream_spans(&mut self) -> io::Result<(&File, impl Iterator<Item = Span> + '_)> {
        self.prepare_read()?;
        self.streams.sort_by_key(|(o, _)| *o);
        Ok((self.w.get_ref(), self.streams.iter().map(|(_, s)| *s)))
    }

    /// Append one row; its span excludes the newline that follows it.
    fn write_row<T: Serialize>(&mut self, row: &T, form: Form) -> io::Result<Span> {
        if self.moved {
            self.w.seek(SeekFrom::Start(self.end))?;
            self.moved = false;
        }
        self.scratch.clear();
        match form {
            Form::Compact => serde_json::to_writer(&mut self.scratch, row)?,
            Form::Rendered => render_row(&mut self.scratch, row)?,
        }
        let span = Span {
            offset: self.end,
            len: self.scratch.len() as u64,
        };
        self.scratch.push(b'\n');
        self.w.write_all(&self.scratch)?;
        self.end += self.scratch.len() as u64;
        Ok(span)
    }

    /// Flush the buffered rows; reading moves the shared cursor.
    fn prepare_read(&mut self) -> io::Result<()> {
        self.w.flush()?;
        self.moved = true;
        Ok(())
    }
}

/// [`crate::rules::finding_order`] on keys.
fn order_keys(a: &FindingKey, b: &FindingKey) -> std::cmp::Ordering {
    sort_key(a.severity, &a.subject, a.rule).cmp(&sort_key(b.severity, &b.subject, b.rule))
}

/// Reads rows at given spans of the file, in any order.
struct SpanReader<'a> {
    r: BufReader<&'a File>,
    /// The reader's position, once known: rows pushed in key order are read without seeking.
    pos: Option<u64>,
    buf: Vec<u8>,
}

impl<'a> SpanReader<'a> {
    fn new(file: &'a File) -> Self {
        SpanReader {
            r: BufReader::with_capacity(1 << 16, file),
            pos: None,
            buf: Vec::new(),
        }
    }

    fn read(&mut self, s: Span) -> io::Result<&[u8]> {
        match self.pos {
            Some(p) if p <= s.offset => {
                let ahead = i64::try_from(s.offset - p).map_err(io::Error::other)?;
                self.r.seek_relative(ahead)?;
            }
            _ => {
                self.r.seek(SeekFrom::Start(s.offset))?;
            }
        }
        // Past the row on any failure, wherever the reader stopped.
        self.pos = None;
        let len = usize::try_from(s.len).map_err(io::Error::other)?;
        self.buf.resize(len, 0);
        self.r.read_exact(&mut self.buf)?;
        self.pos = Some(s.offset + s.len);
        Ok(&self.buf)
    }
}

/// The rows at `spans`, in that order, each read and parsed when the iterator reaches it.
fn read_rows<'a, T: DeserializeOwned + 'a>(
    file: &'a File,
    spans: impl Iterator<Item = Span> + 'a,
) -> impl Iterator<Item = io::Result<T>> + 'a {
    let mut r = SpanReader::new(file);
    spans.map(move |s| Ok(serde_json::from_slice(r.read(s)?)?))
}

/// The rows at `spans`, in that order, as stored, each handed to `f`.
fn each_raw(
    file: &File,
    spans: impl Iterator<Item = Span>,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut r = SpanReader::new(file);
    for s in spans {
        f(r.read(s)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{DtmfOut, SdpOut};
    use std::borrow::Cow;

    fn pretty<T: Serialize>(v: &T) -> String {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::pretty(&mut out);
        v.serialize(&mut ser).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn call(id: &str, first: FrameRef) -> CallOut {
        CallOut {
            call_id: id.to_string(),
            from: "sip:alice@example.com".into(),
            to: "sip:bob@example.com".into(),
            caller: "10.0.0.1:5060".into(),
            callee: "[2001:db8::1]:5060".into(),
            transport: "UDP".into(),
            state: Cow::Borrowed("completed"),
            final_code: Some(200),
            final_reason: Some("OK \"quoted\" \u{1b}".into()),
            final_meaning: Some(Cow::Borrowed("Success")),
            start: 0.1 + 0.2,
            end: f64::INFINITY,
            ringing: Some(f64::NAN),
            answered: None,
            duration_s: Some(1e-7),
            post_dial_delay_ms: Some(123.456),
            hangup_by: Some(Cow::Borrowed("callee")),
            user_agent: None,
            server: Some("ünïcödé".into()),
            forked_dialogs: 2,
            reinvites: 1,
            frames: vec![first, FrameRef::new(2, 345), FrameRef::new(1, 1)],
            packets: 3,
            retransmissions: 0,
            streams: vec![0, 3],
            sdp: vec![SdpOut {
                frame: FrameRef::new(2, 345),
                time: f64::NAN,
                from_caller: true,
                carried_in: "INVITE".into(),
                connection: Some("10.0.0.1".into()),
                media: vec!["audio 10.0.0.1:4000 RTP/AVP PCMU/8000 sendrecv".into()],
            }],
        }
    }

    fn stream(order: u64) -> StreamOut {
        StreamOut {
            ssrc: format!("0x{order:08X}"),
            src: "10.0.0.1:4000".into(),
            dst: "10.0.0.2:4002".into(),
            payload_types: vec![0, 101],
            codec: Some("g711U".into()),
            clock_rate: 8000,
            packets: 10,
            expected: 12,
            lost: -2,
            lost_pct: f64::NEG_INFINITY,
            sequence_errors: 1,
            duplicates: 0,
            out_of_order: 0,
            min_delta_ms: None,
            mean_delta_ms: 20.000000000000004,
            max_delta_ms: f64::NAN,
            min_jitter_ms: Some(f64::INFINITY),
            mean_jitter_ms: 5e-324,
            max_jitter_ms: f64::MAX,
            jitter_valid: true,
            problems: false,
            max_gap_ms: 0.0,
            max_burst: 2,
            start: -0.0,
            end: 1.7976931348623157e300,
            first_frame: FrameRef::new(2, 345),
            last_frame: FrameRef::new(3, u64::MAX),
            call_id: Some("abc".into()),
            association: Some(crate::correlate::Association::Nat),
            announced: true,
            srtp: false,
            dtmf: vec![DtmfOut {
                digit: "5".into(),
                frame: FrameRef::new(2, 400),
                time: 1.5,
                duration_ms: f64::NAN,
            }],
            rtcp: Some(crate::correlate::RtcpSummary {
                sender_reports: 1,
                reports: 2,
                last_fraction_lost: Some(f64::NAN),
                max_fraction_lost: Some(0.25),
                last_cumulative_lost: Some(-3),
                max_jitter_ms: None,
                max_rtt_ms: Some(12.5),
                mean_rtt_ms: Some(1.0 / 3.0),
                first_frame: Some(FrameRef::new(1, 9)),
                xr_voip: Some(crate::rtp::rtcp::XrVoip {
                    ssrc: 7,
                    loss_rate: 1,
                    discard_rate: 2,
                    round_trip_delay_ms: 3,
                    end_system_delay_ms: 4,
                    r_factor: 93,
                    mos_lq: 42,
                    mos_cq: 41,
                }),
            }),
            mos: Some(crate::rtp::mos::MosEstimate {
                codec: "g711U".into(),
                ie: 0.0,
                bpl: 25.1,
                loss_pct: f64::NAN,
                delay_ms: f64::INFINITY,
                delay_measured: false,
                r: 93.2,
                mos: 4.409_370_000_000_001,
            }),
        }
    }

    #[test]
    fn multi_file_frames_and_non_finite_floats_round_trip() {
        let c = call("a@b", FrameRef::new(2, 345));
        let s = stream(1);
        assert!(pretty(&c).contains("\"2:345\""));
        assert!(pretty(&c).contains("\"end\": null"));
        assert!(pretty(&s).contains("\"lost_pct\": null"));
        let mut sp = RowSpill::new().unwrap();
        sp.push_call((FrameRef::new(2, 345), c.call_id.clone()), &c)
            .unwrap();
        sp.push_stream(1, &s).unwrap();
        let back: Vec<CallOut> = sp.calls_sorted().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(back.len(), 1);
        assert_eq!(pretty(&back[0]), pretty(&c));
        assert_eq!(back[0].frames[1], FrameRef::new(2, 345));
        assert!(back[0].end.is_nan() && back[0].sdp[0].time.is_nan());
        let back: Vec<StreamOut> = sp.streams_sorted().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(pretty(&back[0]), pretty(&s));
        assert_eq!(back[0].last_frame, FrameRef::new(3, u64::MAX));
        assert_eq!(back[0].mean_delta_ms, s.mean_delta_ms);
        assert_eq!(back[0].mean_jitter_ms.to_bits(), s.mean_jitter_ms.to_bits());
    }

    #[test]
    fn rows_come_back_in_key_order_and_pushes_after_reads_append() {
        let mut sp = RowSpill::new().unwrap();
        let keys = [
            (FrameRef::new(2, 1), "b"),
            (FrameRef::new(1, 9), "z"),
            (FrameRef::new(1, 9), "a"),
        ];
        for (f, id) in keys {
            sp.push_call((f, id.to_string()), &call(id, f)).unwrap();
        }
        sp.push_stream(5, &stream(5)).unwrap();
        sp.push_stream(2, &stream(2)).unwrap();
        let ids: Vec<String> = sp
            .calls_sorted()
            .unwrap()
            .map(|r| r.unwrap().call_id)
            .collect();
        assert_eq!(ids, ["a", "z", "b"]);
        // A push after a read lands at the end, not where the read stopped.
        sp.push_stream(0, &stream(0)).unwrap();
        let ssrcs: Vec<String> = sp
            .streams_sorted()
            .unwrap()
            .map(|r| r.unwrap().ssrc)
            .collect();
        assert_eq!(ssrcs, ["0x00000000", "0x00000002", "0x00000005"]);
        assert_eq!((sp.calls(), sp.streams()), (3, 3));
        let ids: Vec<String> = sp
            .calls_sorted()
            .unwrap()
            .map(|r| r.unwrap().call_id)
            .collect();
        assert_eq!(ids, ["a", "z", "b"]);
    }
}
