//! The client's address, as rate limits, lockout counters and the audit trail see it.
//!
//! Behind reverse proxies the TCP peer is the proxy, and the client is named in
//! `X-Forwarded-For`. That header is written by whoever sent the request, so only hops
//! appended by proxies we trust count: starting from the peer, we walk the list from the
//! right while the current hop is a trusted proxy, and the first untrusted address is
//! the client. A client that sends its own `X-Forwarded-For` only adds entries to the
//! left of the ones our proxies append, which this walk never reaches.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::ProxyConfig;

/// An address block in CIDR notation (`10.0.0.0/8`, `::1/128`, or a bare address).
/// Parsed once, when the configuration is read, never per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Cidr, String> {
        Cidr::parse(&s)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        format!("{}/{}", c.net, c.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        Cidr::parse(s)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as dual-stack sockets report IPv4
/// peers) are the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Whether `ip` is one of our reverse proxies.
fn is_trusted(cfg: &ProxyConfig, ip: IpAddr, is_peer: bool) -> bool {
    // `trust_forwarded_headers` (the older switch) trusts the immediate peer, whatever
    // its address, as one proxy hop.
    (is_peer && cfg.trust_forwarded_headers) || cfg.trusted_proxies.iter().any(|c| c.contains(ip))
}

/// Whether the TCP peer is one of our reverse proxies.
pub fn peer_is_trusted(cfg: &ProxyConfig, peer: IpAddr) -> bool {
    is_trusted(cfg, canonical(peer), true)
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the rightmost
/// `X-Forwarded-For` hop that is not itself a trusted proxy.
pub fn resolve(cfg: &ProxyConfig, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !is_trusted(cfg, peer, true) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_hop)
        .collect::<Option<Vec<_>>>()
        // A malformed list cannot be walked safely: the proxy itself is the client.
        .unwrap_or_default();
    let mut client = peer;
    for hop in hops.iter().rev() {
        client = canonical(*hop);
        if !is_trusted(cfg, client, false) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, optionally `[v6]:port` or `v4:port`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

/// The key that groups addresses of one client: the address itself for IPv4, and the
/// /64 prefix for IPv6, since one subscriber is routinely handed a whole /64 and could
/// otherwise rotate through 2^64 addresses.
pub fn group(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(proxies: &[&str]) -> ProxyConfig {
        ProxyConfig {
            trust_forwarded_headers: false,
            trusted_proxies: proxies.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_sends() {
        let got = resolve(
            &cfg(&["10.0.0.0/8"]),
            &xff("1.2.3.4"),
            Some(ip("192.0.2.7")),
        );
        assert_eq!(got, Some(ip("192.0.2.7")));
    }

    #[test]
    fn trusted_proxy_names_the_rightmost_untrusted_hop() {
        let c = cfg(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged 6.6.6.6; our two proxies appended 203.0.113.9 and 10.1.1.1.
        let h = xff("6.6.6.6, 203.0.113.9, 10.1.1.1");
        assert_eq!(
            resolve(&c, &h, Some(ip("127.0.0.1"))),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn only_proxies_in_the_chain_gives_the_leftmost() {
        let c = cfg(&["10.0.0.0/8"]);
        let h = xff("10.0.0.2, 10.0.0.3");
        assert_eq!(resolve(&c, &h, Some(ip("10.0.0.4"))), Some(ip("10.0.0.2")));
    }

    #[test]
    fn malformed_list_falls_back_to_the_peer() {
        let c = cfg(&["127.0.0.1/32"]);
        let h = xff("1.2.3.4, not-an-ip");
        assert_eq!(
            resolve(&c, &h, Some(ip("127.0.0.1"))),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn legacy_switch_trusts_one_hop() {
        let c = ProxyConfig {
            trust_forwarded_headers: true,
            trusted_proxies: vec![],
        };
        let h = xff("6.6.6.6, 198.51.100.1");
        assert_eq!(
            resolve(&c, &h, Some(ip("192.0.2.1"))),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn ipv6_groups_by_64_and_mapped_v4_is_v4() {
        assert_eq!(group(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(group(ip("2001:db8:1:2:ffff::1")), "2001:db8:1:2::/64");
        assert_eq!(group(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert!(Cidr::parse("::ffff:0:0/96").is_ok());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8:ff::1"))
        );
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }
}
