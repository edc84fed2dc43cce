//! Every IANA-registered SIP response code with Wireshark's canonical reason phrase and a
//! one-line practical explanation. (Stub: to be filled.)

/// One registered response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: u16,
    /// Canonical reason phrase (as Wireshark prints it in `sip,stat`).
    pub phrase: &'static str,
    /// What it means in practice and the likely next step.
    pub meaning: &'static str,
}

/// Look up a code.
pub fn lookup(code: u16) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}

/// All codes, ascending.
pub static CODES: &[CodeInfo] = &[];
