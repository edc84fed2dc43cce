//! One serde [`Report`] model built from the analysis and the findings; every sink (text,
//! JSON, tshark-compatible tables) renders that model, so they cannot disagree.
//!
//! Owns: the JSON schema (`docs/json.md` documents it field by field; `schema_version`
//! changes when a field changes meaning), relative times (seconds since the first frame,
//! as Wireshark shows them), redaction and terminal-safe text, and the on-disk spill of
//! call and stream rows ([`RowSpill`]) a streaming engine writes as units finish.

mod model;
mod spill;
mod streamed;
mod text;
mod tshark;

pub use model::{
    CallOut, DtmfOut, Report, SdpOut, StreamOut, build, call_out, stream_out, write_json_deferred,
};
pub use spill::RowSpill;
pub use streamed::{StreamError, StreamedRun, analyze_streamed};
pub use text::render_text;
pub use tshark::{render_rtp_streams, render_sip_stat};
