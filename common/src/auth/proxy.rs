//! The reverse proxies allowed to set the pre-authentication header: Ditto trusts whoever
//! sends it once it is enabled; here only a connection from a configured proxy may, so an end
//! user reaching the server directly cannot claim to be anyone.

use crate::config::ConfigError;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyList {
    nets: Vec<IpNet>,
    cns: Vec<String>,
}

impl ProxyList {
    /// Each entry is an IP address, a CIDR, or else the CN of a proxy's client certificate.
    pub fn parse(entries: &[String]) -> Result<ProxyList, ConfigError> {
        let mut list = ProxyList::default();
        for (i, raw) in entries.iter().enumerate() {
            let entry = raw.trim();
            if entry.is_empty() {
                return Err(ConfigError(format!(
                    "key `pre_authentication_proxies.{i}`: empty entry"
                )));
            }
            if let Ok(net) = entry.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if entry.contains('/') && entry.split('/').next().is_some_and(is_ip) {
                return Err(ConfigError(format!(
                    "key `pre_authentication_proxies.{i}`: malformed CIDR {entry:?}"
                )));
            } else {
                list.cns.push(entry.to_string());
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.cns.is_empty()
    }

    /// Whether a connection with this verified client-certificate CN or from this address is
    /// one of the proxies.
    pub fn admits(&self, cert_cn: Option<&str>, remote: Option<IpAddr>) -> bool {
        let by_cn = cert_cn.is_some_and(|cn| self.cns.iter().any(|c| c == cn));
        // An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`.
        let by_addr = remote
            .map(|ip| ip.to_canonical())
            .is_some_and(|ip| self.nets.iter().any(|n| n.contains(&ip)));
        by_cn || by_addr
    }
}

fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> ProxyList {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        ProxyList::parse(&entries).expect("proxy list parses")
    }

    #[test]
    fn addresses_cidrs_and_cns() {
        let l = list(&["10.1.0.0/16", "192.0.2.7", "fd00::/8", "nginx.internal"]);
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("test address"));
        assert!(l.admits(None, ip("10.1.200.3")));
        assert!(!l.admits(None, ip("10.2.0.1")));
        assert!(l.admits(None, ip("192.0.2.7")));
        assert!(!l.admits(None, ip("192.0.2.8")));
        assert!(l.admits(None, ip("::ffff:10.1.0.9")), "v4-mapped v6");
        assert!(l.admits(None, ip("fd12::1")));
        assert!(l.admits(Some("nginx.internal"), ip("203.0.113.1")));
        assert!(!l.admits(Some("nginx.internal.evil"), ip("203.0.113.1")));
        assert!(!l.admits(None, None));
    }

    #[test]
    fn a_bad_entry_names_its_index() {
        let bad = ProxyList::parse(&["10.0.0.0/8".into(), "10.0.0.0/99".into()]);
        let err = bad.expect_err("bad CIDR accepted").to_string();
        assert!(err.contains("pre_authentication_proxies.1"), "{err}");
        let empty = ProxyList::parse(&[" ".into()]).expect_err("empty entry accepted");
        assert!(empty.to_string().contains("empty"), "{empty}");
    }
}
