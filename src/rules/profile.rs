//! Policy profiles: what one provider's SIP trunk accepts (transports, methods, codecs,
//! DTMF, fax, number formats, caller-ID headers, address ranges, RTP ports, channel limit,
//! keepalive, destinations), as data read from a TOML file (`--profile FILE.toml`). The
//! `policy.*` rules compare the capture against it; they run only when a profile is given
//! ([`crate::rules::run_with_profile`]). `profiles/example-trunk.toml` documents every field.
//!
//! Every list left empty (or option left out) means "no requirement": a profile states only
//! what the provider actually specifies.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// How a number must be written in one header (the user part of the URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NumberFormat {
    /// No requirement.
    #[default]
    Any,
    /// E.164 with a leading `+`: `+31201234567` (8–15 digits after the `+`).
    E164Plus,
    /// E.164 digits without `+`: `31201234567` (8–15 digits).
    E164,
}

impl NumberFormat {
    /// Does the user part `user` (of a sip:/tel: URI) follow this format? Visual
    /// separators (`-`, `.`, `(`, `)`, RFC 3966) are ignored.
    pub fn accepts(self, user: &str) -> bool {
        let u: String = user
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
            .collect();
        let digits = |s: &str| (8..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        match self {
            NumberFormat::Any => true,
            NumberFormat::E164Plus => u.strip_prefix('+').is_some_and(digits),
            NumberFormat::E164 => digits(&u),
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            NumberFormat::Any => "any",
            NumberFormat::E164Plus => "E.164 with + (e.g. +31201234567)",
            NumberFormat::E164 => "E.164 without + (e.g. 31201234567)",
        }
    }
}

/// Number format per header, for requests sent to the trunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumberFormats {
    pub request_uri: NumberFormat,
    pub from: NumberFormat,
    pub to: NumberFormat,
    pub p_asserted_identity: NumberFormat,
}

/// An inclusive UDP port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.min..=self.max).contains(&port)
    }
}

/// Destination prefixes, matched against the dialled number (Request-URI user part of an
/// INVITE to the trunk), with and without its leading `+`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Destinations {
    /// When not empty, only numbers starting with one of these prefixes may be called.
    pub allow: Vec<String>,
    /// Numbers starting with one of these prefixes may never be called (wins over `allow`).
    pub deny: Vec<String>,
}

/// What a provider's trunk accepts. See `profiles/example-trunk.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Name shown in findings.
    pub name: String,
    /// SIP transports the trunk accepts: "udp", "tcp", "tls".
    pub transports: Vec<String>,
    /// SIP methods the trunk handles (others may be ignored by it).
    pub methods: Vec<String>,
    /// Audio codecs the trunk supports, by SDP encoding name (PCMA, PCMU, G722, G729, ...).
    /// telephone-event and comfort noise are not codecs here.
    pub codecs: Vec<String>,
    /// DTMF modes the trunk accepts: "rfc2833" (telephone-event), "info", "inband".
    pub dtmf: Vec<String>,
    /// Whether T.38 fax may be offered (None: no requirement).
    pub t38: Option<bool>,
    /// Number format per header.
    pub number_format: NumberFormats,
    /// INVITEs to the trunk must carry P-Asserted-Identity.
    pub p_asserted_identity_required: bool,
    /// Accepted values of the Privacy header ("id", "none", ...); empty: any.
    pub privacy: Vec<String>,
    /// Our own addresses (PBX, phones). When empty, unroutable (private) addresses are ours
    /// and every routable address is a remote peer.
    pub local_networks: Vec<IpNet>,
    /// Where the provider's signalling comes from / goes to.
    pub signalling_networks: Vec<IpNet>,
    /// Where the provider's media comes from / goes to.
    pub media_networks: Vec<IpNet>,
    /// The provider's RTP port range.
    pub rtp_ports: Option<PortRange>,
    /// Concurrent call (channel) limit.
    pub max_channels: Option<u32>,
    /// Expected keepalive toward the trunk: "options", "crlf", "register" (None: any).
    pub keepalive: Option<String>,
    /// Longest expected interval between keepalives, seconds.
    pub keepalive_interval_s: Option<f64>,
    /// NAT binding timeout (s) to assume instead of the threshold `nat_timeout_s`.
    pub nat_binding_timeout_s: Option<f64>,
    /// Destination whitelist / blacklist.
    pub destinations: Destinations,
}

/// A profile file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid profile {path}: {message}")]
    Parse { path: String, message: String },
}

impl Profile {
    /// Parse a profile from TOML text.
    pub fn from_toml(text: &str) -> Result<Profile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Read a profile file (`--profile FILE.toml`).
    pub fn load(path: &std::path::Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Profile::from_toml(&text).map_err(|message| ProfileError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Is `ip` one of ours (PBX, phones)?
    pub fn is_local(&self, ip: &IpAddr) -> bool {
        if self.local_networks.is_empty() {
            crate::types::is_unroutable(ip)
        } else {
            self.local_networks.iter().any(|n| n.contains(ip))
        }
    }

    /// Is `ip` the provider's signalling side? With signalling networks configured, exactly
    /// those; otherwise any remote (non-local) address.
    pub fn is_trunk(&self, ip: &IpAddr) -> bool {
        if self.signalling_networks.is_empty() {
            !self.is_local(ip)
        } else {
            self.signalling_networks.iter().any(|n| n.contains(ip))
        }
    }

    /// Is `ip` the provider's media side? Media networks, else signalling networks, else
    /// any remote address.
    pub fn is_trunk_media(&self, ip: &IpAddr) -> bool {
        if self.media_networks.is_empty() {
            self.is_trunk(ip)
        } else {
            self.media_networks.iter().any(|n| n.contains(ip))
        }
    }

    /// Is `name` (a transport, method, codec or DTMF mode) in `list`? Empty = allowed.
    pub fn allows(list: &[String], name: &str) -> bool {
        list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(name))
    }

    /// Is the dialled `number` allowed by the destination lists? Returns the prefix that
    /// blocks it (deny) or None when allowed; `Some("")` when it matches no allow prefix.
    pub fn destination_blocked(&self, number: &str) -> Option<String> {
        let bare = number.trim_start_matches('+');
        let hit = |p: &String| {
            let pb = p.trim_start_matches('+');
            number.starts_with(p.as_str()) || (!pb.is_empty() && bare.starts_with(pb))
        };
        if let Some(p) = self.destinations.deny.iter().find(|p| hit(p)) {
            return Some(p.clone());
        }
        if !self.destinations.allow.is_empty() && !self.destinations.allow.iter().any(hit) {
            return Some(String::new());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert!(NumberFormat::E164Plus.accepts("+31201234567"));
        assert!(!NumberFormat::E164Plus.accepts("31201234567"));
        assert!(!NumberFormat::E164Plus.accepts("+3120"));
        assert!(NumberFormat::E164.accepts("31501234567"));
        assert!(!NumberFormat::E164.accepts("+31501234567"));
        assert!(!NumberFormat::E164.accepts("alice"));
        assert!(NumberFormat::Any.accepts("alice"));
        assert!(NumberFormat::E164Plus.accepts("+31-20-123-4567"));
    }

    #[test]
    fn parse_and_reject_unknown_fields() {
        let p = Profile::from_toml(
            "name = \"t\"\ntransports = [\"udp\"]\nsignalling_networks = [\"194.140.246.0/24\"]\n\
             rtp_ports = { min = 10000, max = 20000 }\n[number_format]\nrequest_uri = \"e164-plus\"\n",
        )
        .unwrap();
        assert_eq!(p.transports, vec!["udp"]);
        assert_eq!(p.number_format.request_uri, NumberFormat::E164Plus);
        assert!(p.is_trunk(&"194.140.246.7".parse().unwrap()));
        assert!(!p.is_trunk(&"194.140.247.7".parse().unwrap()));
        assert!(p.rtp_ports.unwrap().contains(10000));
        assert!(!p.rtp_ports.unwrap().contains(20001));
        assert!(Profile::from_toml("bogus = 1").is_err());
        assert!(Profile::from_toml("rtp_ports = { min = 1 }").is_err());
    }

    #[test]
    fn trunk_side_defaults_to_remote_addresses() {
        let p = Profile::default();
        assert!(p.is_trunk(&"203.0.113.1".parse().unwrap()));
        assert!(!p.is_trunk(&"192.168.1.5".parse().unwrap()));
        assert!(Profile::allows(&[], "TCP"));
        assert!(Profile::allows(&["udp".into()], "UDP"));
        assert!(!Profile::allows(&["udp".into()], "TCP"));
    }

    #[test]
    fn destinations() {
        let p = Profile {
            destinations: Destinations {
                allow: vec!["+31".into(), "+32".into()],
                deny: vec!["+31900".into()],
            },
            ..Default::default()
        };
        assert_eq!(p.destination_blocked("+31201234567"), None);
        assert_eq!(p.destination_blocked("31201234567"), None);
        assert_eq!(
            p.destination_blocked("+31900123456"),
            Some("+31900".to_string())
        );
        assert_eq!(p.destination_blocked("+88216123456"), Some(String::new()));
    }
}
