//! Capture file writers: classic pcap (µs or ns magic, either byte order, snaplen with
//! optional truncation that records the original length) and pcapng (SHB, any number of
//! IDBs with their own link type and `if_tsresol`, EPBs with an optional comment, ISBs
//! with `isb_ifrecv`/`isb_ifdrop`). Both stream to any [`Write`]; [`write_capture`] and
//! [`gzip`] are the in-memory conveniences the fixtures use.

use crate::capture::linktype;
use std::io::{self, Write};

/// Timestamp resolution of a classic pcap file (selects the magic number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    Micro,
    Nano,
}

/// Byte order the file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
    fn u64(self, v: u64) -> [u8; 8] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

/// Classic pcap file parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapOptions {
    pub resolution: TsResolution,
    pub endian: Endian,
    pub linktype: u32,
    pub snaplen: u32,
    /// Cut packets longer than `snaplen` (recording the original length), as a capture
    /// with `-s` would. When false, packets are written whole whatever the snaplen says.
    pub truncate: bool,
}

impl Default for PcapOptions {
    fn default() -> Self {
        PcapOptions {
            resolution: TsResolution::Micro,
            endian: Endian::Little,
            linktype: linktype::ETHERNET,
            snaplen: 262_144,
            truncate: false,
        }
    }
}

/// Split nanoseconds since the epoch into (seconds, sub-second units of 10^-9 / `div`).
/// Negative times are clamped to the epoch: pcap has no sign.
fn split_ts(ts_ns: i64, div: i64) -> (u32, u32) {
    let ts = ts_ns.max(0);
    let secs = ts / 1_000_000_000;
    let frac = (ts % 1_000_000_000) / div.max(1);
    (u32::try_from(secs).unwrap_or(u32::MAX), frac as u32)
}

/// Streaming classic pcap writer.
pub struct PcapWriter<W: Write> {
    w: W,
    o: PcapOptions,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte global header.
    pub fn new(mut w: W, o: PcapOptions) -> io::Result<Self> {
        let magic = match o.resolution {
            TsResolution::Micro => 0xA1B2_C3D4u32,
            TsResolution::Nano => 0xA1B2_3C4D,
        };
        let e = o.endian;
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&e.u32(magic));
        h[4..6].copy_from_slice(&e.u16(2));
        h[6..8].copy_from_slice(&e.u16(4));
        // thiszone and sigfigs stay 0
        h[16..20].copy_from_slice(&e.u32(o.snaplen));
        h[20..24].copy_from_slice(&e.u32(o.linktype));
        w.write_all(&h)?;
        Ok(PcapWriter { w, o, packets: 0 })
    }

    /// One record; its original length is the data length.
    pub fn write_packet(&mut self, ts_ns: i64, data: &[u8]) -> io::Result<()> {
        let orig = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.write_packet_orig(ts_ns, data, orig)
    }

    /// One record with an explicit original length (≥ the bytes written).
    pub fn write_packet_orig(&mut self, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let div = match self.o.resolution {
            TsResolution::Micro => 1000,
            TsResolution::Nano => 1,
        };
        let (s, f) = split_ts(ts_ns, div);
        let mut cut = data;
        if self.o.truncate {
            let snap = usize::try_from(self.o.snaplen).unwrap_or(usize::MAX);
            if let Some(c) = data.get(..snap) {
                cut = c;
            }
        }
        let incl = u32::try_from(cut.len()).unwrap_or(u32::MAX);
        let orig = orig_len.max(incl);
        let e = self.o.endian;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&e.u32(s));
        h[4..8].copy_from_slice(&e.u32(f));
        h[8..12].copy_from_slice(&e.u32(incl));
        h[12..16].copy_from_slice(&e.u32(orig));
        self.w.write_all(&h)?;
        self.w.write_all(cut)?;
        self.packets += 1;
        Ok(())
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes and hands back the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One pcapng interface (IDB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapngInterface {
    pub linktype: u32,
    /// 0 = no limit. Packets longer than a non-zero snaplen are cut (orig_len kept).
    pub snaplen: u32,
    /// `if_tsresol` as a power of ten (6 = µs, the pcapng default; 9 = ns).
    pub tsresol: u8,
    pub name: Option<String>,
}

impl PcapngInterface {
    pub fn new(linktype: u32, tsresol: u8) -> Self {
        PcapngInterface {
            linktype,
            snaplen: 0,
            tsresol,
            name: None,
        }
    }
}

/// Streaming pcapng writer (one section).
pub struct PcapngWriter<W: Write> {
    w: W,
    e: Endian,
    ifaces: Vec<PcapngInterface>,
    buf: Vec<u8>,
    packets: u64,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block (`shb_userappl` when given).
    pub fn new(w: W, e: Endian, userappl: Option<&str>) -> io::Result<Self> {
        let mut me = PcapngWriter {
            w,
            e,
            ifaces: Vec::new(),
            buf: Vec::new(),
            packets: 0,
        };
        let mut body = Vec::new();
        body.extend_from_slice(&e.u32(0x1A2B_3C4D));
        body.extend_from_slice(&e.u16(1));
        body.extend_from_slice(&e.u16(0));
        body.extend_from_slice(&e.u64(u64::MAX)); // section length unknown (-1)
        if let Some(app) = userappl {
            me.opt(&mut body, 4, app.as_bytes());
            me.opt_end(&mut body);
        }
        me.block(0x0A0D_0D0A, &body)?;
        Ok(me)
    }

    fn opt(&self, out: &mut Vec<u8>, code: u16, val: &[u8]) {
        let len = u16::try_from(val.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&self.e.u16(code));
        out.extend_from_slice(&self.e.u16(len));
        out.extend_from_slice(val.get(..usize::from(len)).unwrap_or(val));
        out.extend(std::iter::repeat_n(0u8, pad4(usize::from(len))));
    }

    fn opt_end(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }

    fn block(&mut self, ty: u32, body: &[u8]) -> io::Result<()> {
        let total = 12 + body.len() + pad4(body.len());
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        self.buf.clear();
        self.buf.extend_from_slice(&self.e.u32(ty));
        self.buf.extend_from_slice(&self.e.u32(total));
        self.buf.extend_from_slice(body);
        self.buf.extend(std::iter::repeat_n(0u8, pad4(body.len())));
        self.buf.extend_from_slice(&self.e.u32(total));
        self.w.write_all(&self.buf)
    }

    /// Writes an Interface Description Block; returns the interface id.
    pub fn add_interface(&mut self, i: PcapngInterface) -> io::Result<u32> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.e.u16(u16::try_from(i.linktype).unwrap_or(u16::MAX)));
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.e.u32(i.snaplen));
        if let Some(n) = &i.name {
            self.opt(&mut body, 2, n.as_bytes());
        }
        self.opt(&mut body, 9, &[i.tsresol]);
        self.opt_end(&mut body);
        self.block(1, &body)?;
        self.ifaces.push(i);
        Ok(u32::try_from(self.ifaces.len() - 1).unwrap_or(u32::MAX))
    }

    fn units(&self, iface: u32, ts_ns: i64) -> u64 {
        let r = self
            .ifaces
            .get(iface as usize)
            .map(|i| i.tsresol)
            .unwrap_or(6);
        let ns = u64::try_from(ts_ns.max(0)).unwrap_or(0);
        if r & 0x80 != 0 {
            // power-of-two resolutions are not produced by this writer; treat as µs
            return ns / 1000;
        }
        if r <= 9 {
            ns / 10u64.pow(9 - u32::from(r))
        } else {
            ns.saturating_mul(10u64.saturating_pow(u32::from(r) - 9))
        }
    }

    /// Enhanced Packet Block. `orig_len` defaults to the data length; `comment` becomes
    /// an `opt_comment`.
    pub fn write_packet(
        &mut self,
        iface: u32,
        ts_ns: i64,
        data: &[u8],
        orig_len: Option<u32>,
        comment: Option<&str>,
    ) -> io::Result<()> {
        let snap = self
            .ifaces
            .get(iface as usize)
            .map(|i| i.snaplen)
            .unwrap_or(0);
        let mut cut = data;
        if snap > 0
            && let Some(c) = data.get(..snap as usize)
        {
            cut = c;
        }
        let incl = u32::try_from(cut.len()).unwrap_or(u32::MAX);
        let orig = orig_len
            .unwrap_or(u32::try_from(data.len()).unwrap_or(u32::MAX))
            .max(incl);
        let t = self.units(iface, ts_ns);
        let mut body = Vec::with_capacity(20 + cut.len() + 8);
        body.extend_from_slice(&self.e.u32(iface));
        body.extend_from_slice(&self.e.u32((t >> 32) as u32));
        body.extend_from_slice(&self.e.u32(t as u32));
        body.extend_from_slice(&self.e.u32(incl));
        body.extend_from_slice(&self.e.u32(orig));
        body.extend_from_slice(cut);
        body.extend(std::iter::repeat_n(0u8, pad4(cut.len())));
        if let Some(c) = comment {
            self.opt(&mut body, 1, c.as_bytes());
            self.opt_end(&mut body);
        }
        self.block(6, &body)?;
        self.packets += 1;
        Ok(())
    }

    /// Interface Statistics Block with `isb_ifrecv` / `isb_ifdrop` when given.
    pub fn write_stats(
        &mut self,
        iface: u32,
        ts_ns: i64,
        ifrecv: Option<u64>,
        ifdrop: Option<u64>,
    ) -> io::Result<()> {
        let t = self.units(iface, ts_ns);
        let mut body = Vec::new();
        body.extend_from_slice(&self.e.u32(iface));
        body.extend_from_slice(&self.e.u32((t >> 32) as u32));
        body.extend_from_slice(&self.e.u32(t as u32));
        if ifrecv.is_some() || ifdrop.is_some() {
            if let Some(r) = ifrecv {
                self.opt(&mut body, 4, &self.e.u64(r));
            }
            if let Some(d) = ifdrop {
                self.opt(&mut body, 5, &self.e.u64(d));
            }
            self.opt_end(&mut body);
        }
        self.block(5, &body)
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// A packet ready to be written: absolute time, interface (pcapng) and link-layer bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub ts_ns: i64,
    pub iface: u32,
    pub data: Vec<u8>,
    pub comment: Option<String>,
}

impl Packet {
    pub fn new(ts_ns: i64, data: Vec<u8>) -> Self {
        Packet {
            ts_ns,
            iface: 0,
            data,
            comment: None,
        }
    }
}

/// What file to produce from a packet list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    Pcap(PcapOptions),
    Pcapng {
        endian: Endian,
        interfaces: Vec<PcapngInterface>,
        /// (interface, dropped) written as ISBs after the last packet.
        drops: Vec<(u32, u64)>,
    },
}

/// Renders packets (in the order given) into an in-memory capture file.
pub fn write_capture(fmt: &FileFormat, packets: &[Packet]) -> io::Result<Vec<u8>> {
    match fmt {
        FileFormat::Pcap(o) => {
            let mut w = PcapWriter::new(Vec::new(), *o)?;
            for p in packets {
                w.write_packet(p.ts_ns, &p.data)?;
            }
            w.finish()
        }
        FileFormat::Pcapng {
            endian,
            interfaces,
            drops,
        } => {
            let mut w = PcapngWriter::new(Vec::new(), *endian, Some("sipscope synth"))?;
            for i in interfaces {
                w.add_interface(i.clone())?;
            }
            let mut recv = vec![0u64; interfaces.len()];
            for p in packets {
                if let Some(r) = recv.get_mut(p.iface as usize) {
                    *r += 1;
                }
                w.write_packet(p.iface, p.ts_ns, &p.data, None, p.comment.as_deref())?;
            }
            let last = packets.last().map(|p| p.ts_ns).unwrap_or(0);
            for &(i, d) in drops {
                let r = recv.get(i as usize).copied().unwrap_or(0);
                w.write_stats(i, last, Some(r.saturating_add(d)), Some(d))?;
            }
            w.finish()
        }
    }
}

/// Gzip with a fixed header (mtime 0, no name) so the output is reproducible.
pub fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    e.write_all(data)?;
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
    use pcap_parser::{Block, PcapBlockOwned, PcapError};

    /// Every record of a legacy pcap file through pcap-parser:
    /// (link type, [(ts_sec, ts_frac, caplen, origlen, data)]).
    type Record = (u32, u32, u32, u32, Vec<u8>);

    fn legacy_records(bytes: &[u8]) -> (u32, Vec<Record>) {
        let (rest, hdr) = pcap_parser::parse_pcap_header(bytes).expect("header");
        let mut out = Vec::new();
        let mut rest = rest;
        let be = hdr.is_bigendian();
        while !rest.is_empty() {
            let (r, b) = if be {
                pcap_parser::pcap::parse_pcap_frame_be(rest).expect("frame")
            } else {
                pcap_parser::pcap::parse_pcap_frame(rest).expect("frame")
            };
            out.push((b.ts_sec, b.ts_usec, b.caplen, b.origlen, b.data.to_vec()));
            rest = r;
        }
        (hdr.network.0 as u32, out)
    }

    #[test]
    fn pcap_round_trip_micro_little() {
        let o = PcapOptions::default();
        let pk = vec![Packet::new(1_500_000_000_123_456_789, vec![1, 2, 3, 4, 5])];
        let f = write_capture(&FileFormat::Pcap(o), &pk).unwrap();
        assert_eq!(&f[0..4], &[0xD4, 0xC3, 0xB2, 0xA1]);
        let (lt, recs) = legacy_records(&f);
        assert_eq!(lt, 1);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].0, 1_500_000_000);
        assert_eq!(recs[0].1, 123_456);
        assert_eq!(recs[0].4, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn pcap_nano_big_endian_truncated() {
        let o = PcapOptions {
            resolution: TsResolution::Nano,
            endian: Endian::Big,
            linktype: linktype::RAW,
            snaplen: 3,
            truncate: true,
        };
        let f = write_capture(
            &FileFormat::Pcap(o),
            &[Packet::new(2_000_000_007, vec![9; 10])],
        )
        .unwrap();
        assert_eq!(&f[0..4], &[0xA1, 0xB2, 0x3C, 0x4D]);
        let (_, hdr) = pcap_parser::parse_pcap_header(&f).unwrap();
        assert!(hdr.is_bigendian());
        assert!(hdr.is_nanosecond_precision());
        assert_eq!(hdr.snaplen, 3);
        let (lt, recs) = legacy_records(&f);
        assert_eq!(lt, 101);
        assert_eq!(recs[0].0, 2);
        assert_eq!(recs[0].1, 7);
        assert_eq!(recs[0].2, 3);
        assert_eq!(recs[0].3, 10);
        assert_eq!(recs[0].4, vec![9, 9, 9]);
    }

    #[test]
    fn pcapng_round_trip_two_interfaces_comment_and_drops() {
        let fmt = FileFormat::Pcapng {
            endian: Endian::Little,
            interfaces: vec![
                PcapngInterface::new(linktype::LINUX_SLL, 9),
                PcapngInterface::new(linktype::ETHERNET, 6),
            ],
            drops: vec![(1, 5)],
        };
        let mut p0 = Packet::new(1_000_000_000_123_456_789, vec![0xAA; 7]);
        p0.comment = Some("hello".into());
        let mut p1 = Packet::new(1_000_000_000_123_456_789, vec![0xBB; 8]);
        p1.iface = 1;
        let f = write_capture(&fmt, &[p0, p1]).unwrap();
        let mut rd = pcap_parser::PcapNGReader::new(65536, &f[..]).unwrap();
        let mut idbs = Vec::new();
        let mut epbs = Vec::new();
        let mut isb_seen = false;
        for _ in 0..100 {
            match rd.next() {
                Ok((off, blk)) => {
                    if let PcapBlockOwned::NG(b) = blk {
                        match b {
                            Block::InterfaceDescription(i) => {
                                idbs.push((i.linktype.0, i.if_tsresol));
                            }
                            Block::EnhancedPacket(e) => {
                                let ts = ((e.ts_high as u64) << 32) | e.ts_low as u64;
                                epbs.push((e.if_id, ts, e.packet_data().to_vec(), e.options.len()));
                            }
                            Block::InterfaceStatistics(st) => {
                                // isb_ifdrop (code 5) = 5, isb_ifrecv (code 4) = 1 + 5
                                let has = |code: u16, v: u64| {
                                    st.options.iter().any(|o| {
                                        o.code.0 == code && o.value() == &v.to_le_bytes()[..]
                                    })
                                };
                                isb_seen = st.if_id == 1 && has(5, 5) && has(4, 6);
                            }
                            _ => {}
                        }
                    }
                    rd.consume(off);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => rd.refill().unwrap(),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(idbs, vec![(113, 9), (1, 6)]);
        assert_eq!(epbs.len(), 2);
        assert_eq!(epbs[0].0, 0);
        assert_eq!(epbs[0].1, 1_000_000_000_123_456_789);
        assert_eq!(epbs[0].2, vec![0xAA; 7]);
        assert!(epbs[0].3 >= 1, "comment option present");
        assert_eq!(epbs[1].1, 1_000_000_000_123_456);
        assert_eq!(epbs[1].2, vec![0xBB; 8]);
        assert!(isb_seen);
    }

    #[test]
    fn gzip_is_deterministic_and_inflates() {
        use std::io::Read;
        let a = gzip(b"hello hello hello").unwrap();
        let b = gzip(b"hello hello hello").unwrap();
        assert_eq!(a, b);
        let mut d = flate2::read::GzDecoder::new(&a[..]);
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello hello hello");
    }
}
