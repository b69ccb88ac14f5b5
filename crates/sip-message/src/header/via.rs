//! The Via header (RFC 3261 §20.42, RFC 3581 rport, RFC 5118 IPv6 received).

use std::net::SocketAddr;

use crate::error::SyntaxError;
use crate::host::Host;
use crate::params::{ParamRules, Params};
use crate::syntax::{is_lws, Scanner};

/// One Via value: `SIP/2.0/UDP host:port;branch=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name, normally `SIP`.
    pub protocol: &'a str,
    /// Protocol version, normally `2.0`.
    pub version: &'a str,
    /// Transport token as written (`UDP`, `TCP`, `TLS`, `WS`, …).
    pub transport: &'a str,
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by host as written.
    pub host_raw: &'a str,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// Via parameters.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one Via value (already split from its comma-separated list).
    pub fn parse(s: &'a str) -> Result<Via<'a>, SyntaxError> {
        let mut sc = Scanner::new(s);
        sc.skip_lws();
        let protocol = sc.token("missing protocol name")?;
        slash(&mut sc)?;
        let version = sc.token("missing protocol version")?;
        slash(&mut sc)?;
        let transport = sc.token("missing transport")?;
        if !sc.skip_lws() {
            return Err(SyntaxError("missing space before sent-by"));
        }
        let start = sc.pos();
        sc.take_while(|b| b != b';' && !is_lws(b));
        let sent_by = sc.slice(start, sc.pos());
        let (host, port) = Host::parse_with_port(sent_by)?;
        let host_raw = match port {
            Some(_) => {
                &sent_by[..crate::syntax::rfind_byte(sent_by, b':').unwrap_or(sent_by.len())]
            }
            None => sent_by,
        };
        let params = Params::parse(sc.rest(), ParamRules::Header)?;
        let via = Via {
            protocol,
            version,
            transport,
            host,
            host_raw,
            port,
            params,
        };
        via.check_params()?;
        Ok(via)
    }

    fn check_params(&self) -> Result<(), SyntaxError> {
        for p in self.params {
            let v = p.value;
            let is = |n: &str| p.name.eq_ignore_ascii_case(n);
            let ok = if is("received") {
                v.is_some_and(|v| Host::parse_address(v).is_ok())
            } else if is("maddr") {
                v.is_some_and(|v| Host::parse(v).is_ok())
            } else if is("ttl") {
                v.and_then(|v| v.parse::<u8>().ok()).is_some()
            } else if is("rport") {
                v.is_none_or(|v| crate::host::parse_port(v).is_ok())
            } else {
                !is("branch") || v.is_some()
            };
            if !ok {
                return Err(SyntaxError("invalid Via parameter"));
            }
        }
        Ok(())
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// True when the branch starts with the RFC 3261 magic cookie `z9hG4bK`.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with("z9hG4bK"))
    }

    /// The `received` parameter, parsed.
    pub fn received(&self) -> Option<Host<'a>> {
        self.params
            .get("received")
            .flatten()
            .and_then(|v| Host::parse_address(v).ok())
    }

    /// The `rport` parameter: `None` when absent, `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|v| v.parse().ok()))
    }

    /// This Via as a response to a request received from `src` carries it (RFC 3261
    /// §18.2.1, RFC 3581 §4): `received` with the source IP when it differs from sent-by
    /// (or rport was asked for), `rport` with the source port when it was asked for. `None`
    /// when nothing changes.
    pub fn stamped(&self, src: SocketAddr) -> Option<String> {
        let with_rport = self.rport().is_some();
        let add_received = with_rport || self.host.ip() != Some(src.ip());
        if !add_received {
            return None;
        }
        let mut out = String::with_capacity(self.params.as_str().len() + 96);
        for part in [self.protocol, "/", self.version, "/", self.transport, " "] {
            out.push_str(part);
        }
        out.push_str(self.host_raw);
        if let Some(port) = self.port {
            out.push(':');
            crate::push_decimal(&mut out, u64::from(port));
        }
        for p in self.params.iter() {
            if p.name.eq_ignore_ascii_case("received") || p.name.eq_ignore_ascii_case("rport") {
                continue;
            }
            out.push(';');
            out.push_str(p.name);
            if let Some(v) = p.value {
                out.push('=');
                out.push_str(v);
            }
        }
        out.push_str(";received=");
        crate::push_ip(&mut out, src.ip());
        if with_rport {
            out.push_str(";rport=");
            crate::push_decimal(&mut out, u64::from(src.port()));
        }
        Some(out)
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }

    /// The `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .get("ttl")
            .flatten()
            .and_then(|v| v.parse().ok())
    }
}

fn slash(sc: &mut Scanner<'_>) -> Result<(), SyntaxError> {
    sc.skip_lws();
    sc.expect(b'/', "expected '/' in sent-protocol")?;
    sc.skip_lws();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tortuous_via() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!((v.protocol, v.version, v.transport), ("SIP", "2.0", "UDP"));
        assert_eq!(v.host_raw, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        let v = Via::parse(
            "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8",
        )
        .unwrap();
        assert_eq!(v.host_raw, "spindle.example.com");
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
    }

    #[test]
    fn rport_received_ipv6() {
        let v = Via::parse(
            "SIP/2.0/UDP [2001:db8::9:1]:5060;received=2001:db8::9:255;rport;branch=z9hG4bKx",
        )
        .unwrap();
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.rport(), Some(None));
        assert!(matches!(v.received(), Some(Host::Ipv6(_))));
        let v =
            Via::parse("SIP/2.0/UDP h;received=[2001:db8::9:255];rport=5070;ttl=1;maddr=239.1.1.1")
                .unwrap();
        assert_eq!(v.rport(), Some(Some(5070)));
        assert_eq!(v.ttl(), Some(1));
        assert_eq!(v.maddr(), Some("239.1.1.1"));
    }

    #[test]
    fn bad_vias() {
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP",
            "SIP/2.0 host",
            "SIP/2.0/UDP host;ttl=300",
            "SIP/2.0/UDP host;received=x y",
            "SIP/2.0/UDP host;branch",
            "SIP/2.0/UDPhost",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }
}
