//! The rule registry and the `rule!` macro every family file uses to declare a rule as a
//! unit struct with static metadata and a pure check.

use super::Rule;

/// Declare a rule: `rule!(Name { id, severity, title, explanation, remediation,
/// thresholds[, call_local: true] } |cx, out, meta| { ... })`, or, for a rule that reads
/// across calls, `rule!(Name { id, ..., thresholds, aggregate: EXPR })` with `EXPR` a fresh
/// [`Aggregate`](super::Aggregate).
macro_rules! rule {
    (@call_local) => {
        false
    };
    (@call_local $cl:literal) => {
        $cl
    };
    // The static metadata of both forms.
    (@meta $id:literal, $sev:ident, $title:literal, $ex:literal, $re:literal, $th:literal, $cl:expr) => {
        fn meta(&self) -> &'static $crate::rules::RuleMeta {
            static M: $crate::rules::RuleMeta = $crate::rules::RuleMeta {
                id: $id,
                severity: $crate::rules::Severity::$sev,
                title: $title,
                explanation: $ex,
                remediation: $re,
                thresholds: $th,
                call_local: $cl,
            };
            &M
        }
    };
    ($ty:ident {
        id: $id:literal,
        severity: $sev:ident,
        title: $title:literal,
        explanation: $ex:literal,
        remediation: $re:literal,
        thresholds: $th:literal
        $(, call_local: $cl:literal)? $(,)?
    } |$cx:ident, $out:ident, $meta:ident| $body:block) => {
        pub struct $ty;
        impl $crate::rules::Rule for $ty {
            rule!(@meta $id, $sev, $title, $ex, $re, $th, rule!(@call_local $($cl)?));
            #[allow(unused_variables)]
            fn check(&self, $cx: &$crate::rules::Ctx<'_>, $out: &mut Vec<$crate::rules::Finding>) {
                let $meta = self.meta();
                $body
            }
        }
    };
    ($ty:ident {
        id: $id:literal,
        severity: $sev:ident,
        title: $title:literal,
        explanation: $ex:literal,
        remediation: $re:literal,
        thresholds: $th:literal,
        aggregate: $agg:expr $(,)?
    }) => {
        pub struct $ty;
        impl $crate::rules::Rule for $ty {
            rule!(@meta $id, $sev, $title, $ex, $re, $th, false);
            fn check(&self, cx: &$crate::rules::Ctx<'_>, out: &mut Vec<$crate::rules::Finding>) {
                $crate::rules::fold(cx, self.meta(), Box::new($agg), out)
            }
            fn aggregate(&self) -> Option<Box<dyn $crate::rules::Aggregate>> {
                Some(Box::new($agg))
            }
        }
    };
}
pub(crate) use rule;

use super::families::*;

static REGISTRY: &[&dyn Rule] = &[
    // capture
    &capture::Truncated,
    &capture::SnaplenCut,
    &capture::Drops,
    &capture::OneSided,
    &capture::LimitsHit,
    &capture::EncryptedSignalling,
    &capture::Duplicates,
    // sip
    &sip::CallFailed,
    &sip::InviteUnanswered,
    &sip::AckMissing,
    &sip::Retransmissions,
    &sip::SlowSetup,
    &sip::TimerDrop,
    &sip::InDialogMisroute,
    &sip::Malformed,
    &sip::OversizeUdp,
    &sip::SessionTimer,
    // registration
    &reg::Failed,
    &reg::ExpiryExceedsNat,
    &reg::IntervalTooShort,
    &reg::Lapsed,
    &reg::BindingExpiredInboundLost,
    // keepalive
    &reg::KeepaliveMissing,
    &reg::OptionsUnanswered,
    &reg::KeepaliveInterval,
    // nat + alg
    &nat::PrivateSdp,
    &nat::PrivateContact,
    &nat::MediaPortTranslated,
    &nat::MediaToUnroutable,
    &nat::EarlyMediaLost,
    &nat::BindingChurn,
    &nat::AlgRewriteInconsistent,
    &vantage::TwoCaptureDiff,
    // media
    &media::OneWay,
    &media::NoMedia,
    &media::Stopped,
    &media::Orphan,
    &media::CodecMismatch,
    &media::DtmfMismatch,
    &media::HoldNotResumed,
    &media::SsrcChange,
    // quality
    &qos::Loss,
    &qos::Jitter,
    &qos::Mos,
    &qos::RtcpReported,
    &qos::BurstLoss,
    // security
    &security::Scanner,
    &security::Bruteforce,
    &security::TollFraud,
    &security::Flood,
    // policy (only with a profile: run_with_profile)
    &policy::Transport,
    &policy::MethodNotAccepted,
    &policy::Codec,
    &policy::Dtmf,
    &policy::T38,
    &policy::NumberFormatRule,
    &policy::CallerId,
    &policy::PeerAddress,
    &policy::RtpPortRange,
    &policy::Channels,
    &policy::Destination,
    &policy::Keepalive,
];

/// Every rule, in catalogue order.
pub fn registry() -> &'static [&'static dyn Rule] {
    REGISTRY
}
