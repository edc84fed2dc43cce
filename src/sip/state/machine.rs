//! The state machines. (Stub: to be implemented.)

use super::{SipLimits, SipOutput, SipPacket};
use crate::types::Ts;

/// Owns calls, registrations and out-of-dialog transactions for one shard.
pub struct SipState {
    out: SipOutput,
}

impl SipState {
    pub fn new(limits: SipLimits) -> Self {
        let _ = limits;
        SipState {
            out: SipOutput::default(),
        }
    }

    /// Account one SIP message.
    pub fn on_message(&mut self, p: &SipPacket<'_>) {
        self.out.stats.messages += 1;
        let _ = p;
    }

    /// Finalise entries idle since before `now` (capture clock).
    pub fn expire(&mut self, now: Ts) {
        let _ = now;
    }

    /// End of input: everything, sorted by first frame.
    pub fn finish(self) -> SipOutput {
        self.out
    }
}
