//! Microsoft Network Monitor 2.x files, converted to an in-memory nanosecond pcap stream so
//! the one pcap path reads them (numbering, truncation, accounting all stay the same).
//!
//! Layout (as Wireshark's wiretap/netmon.c reads it): "GMBU", version minor/major, a
//! media type, the capture start as a SYSTEMTIME, and the offset/length of a frame table
//! of u32 frame offsets. Each 2.x frame record is a u64 microsecond offset from the start,
//! the original and the captured length, then the bytes. NetMon needs random access (the
//! frame table sits at the end), so the file is read whole; it is capped.

/// Largest NetMon file read into memory.
pub const MAX_NETMON_BYTES: usize = 512 << 20;

fn u16le(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32le(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64le(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// NetMon media type → LINKTYPE.
fn linktype(media: u16) -> u32 {
    match media {
        1 => 1,                                  // Ethernet
        6 => 101,                                // raw IP (NDIS WAN, as Wireshark maps it)
        m if m >= 0xE000 => (m - 0xE000) as u32, // pcap link type embedded
        _ => 0xFFFF_FFFF,
    }
}

/// Convert a NetMon 2.x file to pcap (nanosecond magic, little endian). Damage in the
/// frame table or a frame stops the conversion there: the frames before it are kept and
/// `Err`'s text says why, like a truncated pcap.
pub fn to_pcap(b: &[u8]) -> Result<(Vec<u8>, Option<String>), String> {
    if b.get(..4) != Some(b"GMBU") {
        return Err("not a NetMon 2.x file".into());
    }
    let major = *b.get(5).ok_or("NetMon header truncated")?;
    if major != 2 {
        return Err(format!("NetMon version {major}.x not supported"));
    }
    let media = u16le(b, 6).ok_or("NetMon header truncated")?;
    let st: Vec<i64> = (0..8)
        .filter_map(|i| u16le(b, 8 + 2 * i).map(i64::from))
        .collect();
    if st.len() != 8 {
        return Err("NetMon header truncated".into());
    }
    let (year, month, day, hour, min, sec, msec) =
        (st[0], st[1], st[3], st[4], st[5], st[6], st[7]);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(format!("NetMon start time invalid ({year}-{month}-{day})"));
    }
    // Checked: a damaged year (0, 65535) overflows nanoseconds since 1970.
    let start_ns = days_from_civil(year, month, day)
        .checked_mul(86_400)
        .and_then(|d| d.checked_add(hour * 3600 + min * 60 + sec))
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(msec * 1_000_000))
        .ok_or_else(|| format!("NetMon start time out of range (year {year})"))?;
    let ft_off = u32le(b, 24).ok_or("NetMon header truncated")? as usize;
    let ft_len = u32le(b, 28).ok_or("NetMon header truncated")? as usize;
    let link = linktype(media);
    let mut out = Vec::with_capacity(b.len() + 64);
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&link.to_le_bytes());
    let Some(table) = b.get(ft_off..ft_off.saturating_add(ft_len)) else {
        return Ok((
            out,
            Some(format!(
                "NetMon frame table at {ft_off} (+{ft_len}) lies outside the file ({} bytes)",
                b.len()
            )),
        ));
    };
    for (i, chunk) in table.chunks_exact(4).enumerate() {
        let off = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize;
        let rec = (u64le(b, off), u32le(b, off + 8), u32le(b, off + 12));
        let (Some(delta_us), Some(orig), Some(incl)) = rec else {
            return Ok((
                out,
                Some(format!(
                    "NetMon frame {} header at offset {off} is outside the file",
                    i + 1
                )),
            ));
        };
        let data_at = off + 16;
        let Some(data) = b
            .get(data_at..data_at.saturating_add(incl as usize))
            .filter(|_| (incl as usize) <= super::super::MAX_FRAME_LEN as usize)
        else {
            return Ok((
                out,
                Some(format!(
                    "NetMon frame {} ({incl} bytes at offset {data_at}) runs past the end of the file",
                    i + 1
                )),
            ));
        };
        let ts = start_ns
            .saturating_add((delta_us.min(i64::MAX as u64 / 1000) as i64).saturating_mul(1000));
        let secs = ts.div_euclid(1_000_000_000);
        let nanos = ts.rem_euclid(1_000_000_000);
        out.extend_from_slice(&(secs.clamp(0, u32::MAX as i64) as u32).to_le_bytes());
        out.extend_from_slice(&(nanos as u32).to_le_bytes());
        out.extend_from_slice(&incl.to_le_bytes());
        out.extend_from_slice(&orig.max(incl).to_le_bytes());
        out.extend_from_slice(data);
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netmon(frames: &[(u64, &[u8])]) -> Vec<u8> {
        let mut b = b"GMBU\x00\x02\x01\x00".to_vec();
        for v in [2005u16, 7, 0, 17, 15, 39, 20, 502] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.resize(128, 0);
        let mut offs = Vec::new();
        for (d, data) in frames {
            offs.push(b.len() as u32);
            b.extend_from_slice(&d.to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(data);
        }
        let ft = b.len() as u32;
        for o in &offs {
            b.extend_from_slice(&o.to_le_bytes());
        }
        b[24..28].copy_from_slice(&ft.to_le_bytes());
        b[28..32].copy_from_slice(&((offs.len() * 4) as u32).to_le_bytes());
        b
    }

    #[test]
    fn converts_frames_and_times() {
        let (p, err) = to_pcap(&netmon(&[(0, b"abc"), (1_500_000, b"defg")])).unwrap();
        assert!(err.is_none());
        // 2005-07-17 15:39:20.502 UTC = 1121614760.502
        assert_eq!(u32le(&p, 24), Some(1_121_614_760));
        assert_eq!(u32le(&p, 28), Some(502_000_000));
        assert_eq!(u32le(&p, 32), Some(3));
        let second = 24 + 16 + 3;
        assert_eq!(u32le(&p, second), Some(1_121_614_762));
        assert_eq!(u32le(&p, second + 4), Some(2_000_000));
    }

    /// Found by the `capture_reader` fuzz target (long run): years far from 1970 (here 7)
    /// overflowed the nanosecond start time; every year must give a result, never a panic.
    #[test]
    fn regression_netmon_start_year_far_from_1970_is_not_an_overflow() {
        for year in [0u16, 1, 7, 1601, 1969, 2262, 9999, 65535] {
            let mut f = netmon(&[(u64::MAX, b"abc")]);
            f[8..10].copy_from_slice(&year.to_le_bytes());
            let _ = to_pcap(&f);
        }
    }

    #[test]
    fn damaged_table_keeps_what_was_read() {
        let mut f = netmon(&[(0, b"abc")]);
        let n = f.len();
        f[24..28].copy_from_slice(&((n + 100) as u32).to_le_bytes());
        let (p, err) = to_pcap(&f).unwrap();
        assert_eq!(p.len(), 24);
        assert!(err.unwrap().contains("outside"));
        // Truncated everywhere: never panics.
        let full = netmon(&[(0, b"abc"), (10, b"defgh")]);
        for cut in 0..full.len() {
            let _ = to_pcap(&full[..cut]);
        }
    }
}
