//! Stateless link/tunnel/IP/transport decoding. (Stub: to be implemented.)

use super::Decoded;

/// Decode one frame captured on link type `link` (LINKTYPE_* number).
pub fn decode_frame(link: u32, data: &[u8]) -> Decoded<'_> {
    let _ = data;
    Decoded::UnsupportedLink { link }
}
