//! Live capture from a network interface through libpcap (feature `live`; building it
//! needs `libpcap-dev`). Frames get the same numbering and batching as files; the capture
//! ends after a duration or a packet count (capture clock: the packets' own timestamps
//! decide nothing here — the wall clock only bounds how long we listen), and libpcap's
//! drop counters go into `FileInfo::interface_drops`.

use super::{Batch, CaptureError, FileInfo, FrameSource};
use crate::types::{FrameRef, Ts};
use std::time::{Duration, Instant};

/// A live interface as a frame source.
pub struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    info: FileInfo,
    link: u32,
    num: u64,
    bytes: u64,
    deadline: Option<Instant>,
    max_packets: Option<u64>,
    done: bool,
}

fn err(device: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Io {
        path: device.to_string(),
        error: std::io::Error::other(e.to_string()),
    }
}

impl LiveSource {
    /// Open `device` (e.g. `eth0`, `any`) with an optional BPF `filter`; stop after
    /// `duration` or `max_packets`, whichever comes first (never, if both are None).
    pub fn open(
        device: &str,
        filter: Option<&str>,
        duration: Option<Duration>,
        max_packets: Option<u64>,
    ) -> Result<Self, CaptureError> {
        let mut cap = pcap::Capture::from_device(device)
            .map_err(|e| err(device, e))?
            .snaplen(65535)
            .immediate_mode(true)
            .timeout(200)
            .open()
            .map_err(|e| err(device, e))?;
        if let Some(f) = filter {
            cap.filter(f, true)
                .map_err(|e| err(device, format!("filter {f:?}: {e}")))?;
        }
        let link = cap.get_datalink().0 as u32;
        Ok(LiveSource {
            cap,
            info: FileInfo {
                path: format!("live:{device}"),
                format: "live".into(),
                link_types: vec![link],
                snaplen: 65535,
                ..FileInfo::default()
            },
            link,
            num: 0,
            bytes: 0,
            deadline: duration.map(|d| Instant::now() + d),
            max_packets,
            done: false,
        })
    }
}

impl FrameSource for LiveSource {
    fn next_batch(&mut self, batch: &mut Batch, max_frames: usize) -> Result<bool, CaptureError> {
        let mut added = 0;
        while added < max_frames && !self.done {
            if self.deadline.is_some_and(|d| Instant::now() >= d)
                || self.max_packets.is_some_and(|m| self.num >= m)
            {
                self.done = true;
                break;
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    self.num += 1;
                    let h = p.header;
                    let ts = Ts((h.ts.tv_sec as i64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(h.ts.tv_usec as i64 * 1000));
                    if self.info.first_ts.is_none() {
                        self.info.first_ts = Some(ts);
                    }
                    self.info.last_ts = Some(ts);
                    self.info.frames = self.num;
                    if h.caplen < h.len {
                        self.info.snaplen_cut_frames += 1;
                    }
                    self.bytes += p.data.len() as u64;
                    batch.push(FrameRef::new(0, self.num), ts, self.link, h.len, p.data);
                    added += 1;
                }
                // Nothing arrived within the read timeout: hand over what we have.
                Err(pcap::Error::TimeoutExpired) => {
                    if added > 0 {
                        break;
                    }
                }
                Err(e) => return Err(err(&self.info.path, e)),
            }
        }
        if let Ok(st) = self.cap.stats() {
            self.info.interface_drops = Some(u64::from(st.dropped) + u64::from(st.if_dropped));
        }
        Ok(!self.done || added > 0)
    }
    fn infos(&self) -> Vec<FileInfo> {
        vec![self.info.clone()]
    }
    fn bytes_read(&self) -> u64 {
        self.bytes
    }
    fn total_bytes(&self) -> Option<u64> {
        None
    }
}
