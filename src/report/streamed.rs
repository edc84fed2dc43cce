//! The JSON report of a streaming run: the engine hands each finalised unit (a call and
//! its streams, or a stream alone) over as it releases it (`engine::analyze_paths_streamed`);
//! here the call-local rules and the aggregates see it (`rules::Streamed`), and its rows
//! and call-local findings go to a spill file (`spill::RowSpill`), so memory holds
//! neither. At the end the rows and findings are read back in report order (the spilled
//! findings merged with the aggregates' and capture-level rules') and written, byte for
//! byte what
//! [`write_json_deferred`](super::write_json_deferred) writes from the whole model
//! (`tests/streaming.rs`).
//!
//! Row indices that only the whole capture knows: a call row lists its streams by their
//! place in the report's stream list, which depends on every stream of the capture; the
//! spill holds each stream's discovery order instead. Every stream reaches the report,
//! so the orders are the places and the rendered rows are copied as they are; were an
//! order ever missing, the call rows would be parsed and their lists mapped at the end.

use super::model::{CallOut, RowSource, Rows, build_lean, call_out, stream_out, write_report};
use super::spill::RowSpill;
use crate::correlate::Analysis;
use crate::engine::{Config, EngineError, Progress, analyze_paths_streamed};
use crate::rules::{Finding, Profile, Selection, Severity, Streamed, Thresholds, finding_order};

/// Errors of a streaming run: the engine's, or the spill file's.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("spill file: {0}")]
    Spill(#[from] std::io::Error),
    #[error("writing the report: {0}")]
    Json(#[from] serde_json::Error),
}

/// What a streaming run knows at the end besides the model: the rows and the findings
/// (the call-local ones in the spill, the rest here).
pub struct StreamedRun {
    pub model: Analysis,
    spill: RowSpill,
    /// Discovery order of every stream row, sorted: a stream's place in the report.
    orders: Vec<u64>,
    /// The findings of the aggregates and the capture-level rules, in report order.
    rest: Vec<Finding>,
    worst: Option<Severity>,
}

/// What judges the released units: the rules, and the rows' spill.
struct Judge<'a> {
    rules: Streamed<'a>,
    spill: RowSpill,
    orders: Vec<u64>,
    worst: Option<Severity>,
    failed: Option<std::io::Error>,
}

impl Judge<'_> {
    fn unit(&mut self, u: Analysis) {
        self.rules.unit(&u);
        let found = self.rules.take_findings();
        if self.failed.is_some() {
            return;
        }
        let mut r = Ok(());
        for f in found {
            self.worst = self.worst.max(Some(f.severity));
            if r.is_ok() {
                r = self.spill.push_finding(f);
            }
        }
        let t0 = u.capture.first_ts.unwrap_or_default();
        if let Some(c) = u.calls.first()
            && r.is_ok()
        {
            let mut row = call_out(t0, c);
            // Placeholders: the streams' discovery orders (see the module doc).
            row.streams = u.streams.iter().map(|s| s.order as usize).collect();
            r = self
                .spill
                .push_call((c.sip.first_frame, c.sip.call_id.clone()), &row);
        }
        for s in &u.streams {
            self.orders.push(s.order);
            if r.is_ok() {
                r = self.spill.push_stream(s.order, &stream_out(&u, t0, s));
            }
        }
        if let Err(e) = r {
            self.failed = Some(e);
        }
    }
}

/// Units in flight between the analysis thread and the judging thread.
const UNITS_IN_FLIGHT: usize = 256;

/// Analyse `paths` with streaming finalisation, running the rules as units are released.
/// With more than one thread the units are judged (rules, rows) on a thread of their own,
/// off the analysis thread, the busiest one; `--threads 1` judges them in line. Either way
/// the same units in the same order: the output does not depend on it.
pub fn analyze_streamed(
    paths: &[String],
    cfg: &Config,
    progress: Option<&Progress>,
    thresholds: &Thresholds,
    sel: &Selection,
    profile: Option<&Profile>,
) -> Result<StreamedRun, StreamError> {
    let mut judge = Judge {
        rules: Streamed::new(thresholds, sel, profile),
        spill: RowSpill::new()?,
        orders: Vec::new(),
        worst: None,
        failed: None,
    };
    let model = if cfg.threads == 1 {
        let mut sink = |u: Analysis| judge.unit(u);
        analyze_paths_streamed(paths, cfg, progress, &mut sink)?
    } else {
        let (tx, rx) = crossbeam_channel::bounded::<Analysis>(UNITS_IN_FLIGHT);
        std::thread::scope(|scope| {
            let judging = scope.spawn(|| {
                for u in rx.iter() {
                    judge.unit(u);
                }
            });
            let model = {
                let mut sink = |u: Analysis| {
                    // The judge only stops when the channel closes.
                    let _ = tx.send(u);
                };
                analyze_paths_streamed(paths, cfg, progress, &mut sink)
            };
            drop(tx);
            if let Err(e) = judging.join() {
                std::panic::resume_unwind(e);
            }
            model
        })?
    };
    let Judge {
        rules,
        spill,
        mut orders,
        worst,
        failed,
    } = judge;
    if let Some(e) = failed {
        return Err(e.into());
    }
    orders.sort_unstable();
    let rest = rules.finish(&model);
    let worst = worst.max(rest.iter().map(|f| f.severity).max());
    Ok(StreamedRun {
        model,
        spill,
        orders,
        rest,
        worst,
    })
}

/// Rows read back from the spill, written as the report's fields (`write_report`): call
/// rows get their streams' places in the report filled in.
struct Spilled<'a> {
    spill: &'a mut RowSpill,
    orders: &'a [u64],
    /// The findings not spilled (written once, merged with the spilled ones).
    rest: &'a mut Vec<Finding>,
}

impl RowSource for Spilled<'_> {
    fn calls(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()> {
        let orders = self.orders;
        // Streams are numbered in discovery order and every one reaches the report, so a
        // stream's place is its order and the rendered rows hold the right numbers. If
        // that ever fails (a stream not reported), each row's list is mapped.
        if orders.iter().enumerate().all(|(i, &o)| o == i as u64) {
            return self
                .spill
                .each_call_rendered(|row| rows.rendered(row).map_err(std::io::Error::from))
                .map_err(serde_json::Error::io);
        }
        let place = |o: usize| orders.binary_search(&(o as u64)).unwrap_or(o);
        let spilled = self.spill.calls_sorted().map_err(serde_json::Error::io)?;
        for row in spilled {
            let mut c: CallOut = row.map_err(serde_json::Error::io)?;
            c.streams = c.streams.iter().map(|o| place(*o)).collect();
            rows.row(&c)?;
        }
        Ok(())
    }
    fn streams(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()> {
        self.spill
            .each_stream_rendered(|row| rows.rendered(row).map_err(std::io::Error::from))
            .map_err(serde_json::Error::io)
    }
    /// The spilled findings merged with the rest, both in report order: the spilled ones
    /// came first in the rules' order, so they go first among equals.
    fn findings(&mut self, rows: &mut Rows<'_>) -> serde_json::Result<()> {
        let rest = std::mem::take(self.rest);
        let spilled = self
            .spill
            .findings_sorted()
            .map_err(serde_json::Error::io)?;
        let merged = Merge {
            a: spilled.peekable(),
            b: rest.into_iter().peekable(),
        };
        for f in merged {
            rows.row(&f.map_err(serde_json::Error::io)?)?;
        }
        Ok(())
    }
}

impl StreamedRun {
    /// Write the report as pretty JSON (what `write_json_deferred` writes for the whole
    /// model).
    pub fn write_json<W: std::io::Write>(
        &mut self,
        w: W,
        redact_users: bool,
    ) -> Result<(), StreamError> {
        let lean = build_lean(&self.model, redact_users);
        let mut rows = Spilled {
            spill: &mut self.spill,
            orders: &self.orders,
            rest: &mut self.rest,
        };
        write_report(w, &lean, &mut rows)?;
        Ok(())
    }

    /// The worst severity found, if any finding was.
    pub fn worst(&self) -> Option<Severity> {
        self.worst
    }

    /// Findings in the report (call-local ones spilled, and the rest).
    pub fn findings(&self) -> usize {
        self.spill.findings() + self.rest.len()
    }
}

/// Two report-ordered finding sequences as one (ties: `a` first).
struct Merge<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A, B> Iterator for Merge<A, B>
where
    A: Iterator<Item = std::io::Result<Finding>>,
    B: Iterator<Item = Finding>,
{
    type Item = std::io::Result<Finding>;
    fn next(&mut self) -> Option<Self::Item> {
        let take_b = match (self.a.peek(), self.b.peek()) {
            (Some(Ok(a)), Some(b)) => finding_order(b, a) == std::cmp::Ordering::Less,
            (Some(_), _) => false,
            (None, _) => true,
        };
        if take_b {
            self.b.next().map(Ok)
        } else {
            self.a.next()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback of `Spilled::calls`: when the streams' discovery orders are not
    /// 0..n, each call row's stream list is mapped from orders to places. No capture
    /// reaches it (every stream is reported), so the spill is filled here by hand with
    /// sparse orders (10, 13, ...) and the report must still equal the whole model's.
    #[test]
    fn sparse_stream_orders_are_mapped_to_report_places() {
        let path = format!("{}/fixtures/normal-call.pcap", env!("CARGO_MANIFEST_DIR"));
        let a = crate::engine::analyze_paths(&[path], &Config::default(), None).unwrap();
        assert!(
            a.streams.len() >= 2,
            "the fixture has a call with two streams"
        );
        let sparse = |o: u64| 10 + 3 * o;
        let t0 = a.capture.first_ts.unwrap_or_default();
        let mut spill = RowSpill::new().unwrap();
        for c in &a.calls {
            let mut row = call_out(t0, c);
            row.streams = row
                .streams
                .iter()
                .map(|&i| sparse(a.streams[i].order) as usize)
                .collect();
            spill
                .push_call((c.sip.first_frame, c.sip.call_id.clone()), &row)
                .unwrap();
        }
        let mut orders = Vec::new();
        for s in &a.streams {
            orders.push(sparse(s.order));
            spill
                .push_stream(sparse(s.order), &stream_out(&a, t0, s))
                .unwrap();
        }
        orders.sort_unstable();
        let whole = serde_json::to_vec_pretty(&super::super::build(&a, Vec::new(), true)).unwrap();
        let mut run = StreamedRun {
            model: a,
            spill,
            orders,
            rest: Vec::new(),
            worst: None,
        };
        let mut out = Vec::new();
        run.write_json(&mut out, true).unwrap();
        let calls = |j: &[u8]| -> serde_json::Value {
            serde_json::from_slice::<serde_json::Value>(j).unwrap()["calls"].clone()
        };
        assert_eq!(calls(&out)[0]["streams"], calls(&whole)[0]["streams"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(whole).unwrap()
        );
    }
}
