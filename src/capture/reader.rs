//! The pcap/pcapng reader and the multi-file merge. (Stub: to be implemented.)

use super::{Batch, CaptureError, FileInfo};

/// One input file (or standard input), read sequentially in batches.
pub struct CaptureReader {
    info: FileInfo,
}

impl CaptureReader {
    /// Open `path` (`-` = standard input). Gzip is detected by its magic bytes, not the name.
    /// `file_index` is 0 for a single-file analysis, else the 1-based index of the file.
    pub fn open(path: &str, file_index: u16) -> Result<Self, CaptureError> {
        let _ = file_index;
        Err(CaptureError::NotACapture {
            path: path.to_string(),
            detail: "reader not implemented".into(),
        })
    }

    /// Append up to `max_frames` frames to `batch`. Returns `Ok(false)` once the input is
    /// exhausted (or damaged: see [`FileInfo::truncated`]) and nothing was appended.
    pub fn next_batch(
        &mut self,
        batch: &mut Batch,
        max_frames: usize,
    ) -> Result<bool, CaptureError> {
        let _ = (batch, max_frames);
        Ok(false)
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }
}

/// Several files merged by timestamp (ties: earlier file first), numbered per file.
pub struct MergedReader {
    readers: Vec<CaptureReader>,
}

impl MergedReader {
    /// One path: frames are numbered `FrameRef { file: 0, num }`. Several: `file` is the
    /// 1-based position of the path on the command line.
    pub fn open(paths: &[String]) -> Result<Self, CaptureError> {
        let multi = paths.len() > 1;
        let mut readers = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            readers.push(CaptureReader::open(
                p,
                if multi { (i + 1) as u16 } else { 0 },
            )?);
        }
        Ok(MergedReader { readers })
    }

    pub fn next_batch(
        &mut self,
        batch: &mut Batch,
        max_frames: usize,
    ) -> Result<bool, CaptureError> {
        let mut any = false;
        for r in &mut self.readers {
            any |= r.next_batch(batch, max_frames)?;
        }
        Ok(any)
    }

    pub fn infos(&self) -> Vec<FileInfo> {
        self.readers.iter().map(|r| r.info().clone()).collect()
    }

    /// Bytes consumed so far from the underlying files (compressed bytes for .gz), for progress.
    pub fn bytes_read(&self) -> u64 {
        0
    }

    /// Total size of the input files when known (None for standard input).
    pub fn total_bytes(&self) -> Option<u64> {
        None
    }
}
