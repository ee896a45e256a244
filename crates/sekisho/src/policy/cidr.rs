//! Sets of IPv4 and IPv6 networks, looked up in a prefix trie so a list of thousands of
//! partner ranges costs the same per request as a list of three.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixSet;

/// A set of CIDR ranges of both families.
#[derive(Clone, Default)]
pub struct CidrSet {
    v4: PrefixSet<Ipv4Net>,
    v6: PrefixSet<Ipv6Net>,
    len: usize,
}

impl CidrSet {
    /// Parses each entry as a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
    /// The error names the entry that is neither.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = CidrSet::default();
        for entry in entries {
            set.insert(parse_net(entry)?);
        }
        Ok(set)
    }

    /// Adds one network.
    pub fn insert(&mut self, net: IpNet) {
        let added = match net.trunc() {
            IpNet::V4(net) => self.v4.insert(net),
            IpNet::V6(net) => self.v6.insert(net),
        };
        self.len += usize::from(added);
    }

    /// Whether `ip` falls in any of the networks. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
    /// what a dual-stack socket reports) is looked up as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(ip) => self.v4.get_spm(&Ipv4Net::from(ip)).is_some(),
            IpAddr::V6(ip) => self.v6.get_spm(&Ipv6Net::from(ip)).is_some(),
        }
    }

    /// Networks in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no network.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One entry: a CIDR or a single address.
pub fn parse_net(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))
}

/// Parses a list file: one CIDR or address per line; `#` starts a comment.
pub fn parse_list(text: &str) -> Result<Vec<IpNet>, String> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let entry = line.split('#').next().unwrap_or_default().trim();
            (!entry.is_empty())
                .then(|| parse_net(entry).map_err(|e| format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// The IPv4 address inside an IPv4-mapped IPv6 address, else the address itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn ranges_match_by_prefix_not_by_text() {
        let set = CidrSet::parse(["203.0.113.0/24", "10.1.2.3", "2001:db8::/32"]).expect("set");
        assert!(set.contains(ip("203.0.113.77")));
        assert!(set.contains(ip("10.1.2.3")));
        assert!(
            !set.contains(ip("10.1.2.30")),
            "10.1.2.3 is one address, not a prefix of text"
        );
        assert!(!set.contains(ip("203.0.1.1")));
        assert!(set.contains(ip("2001:db8:1::5")));
        assert!(!set.contains(ip("2001:db9::1")));
        assert!(set.contains(ip("::ffff:203.0.113.5")), "mapped IPv4");
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn bad_entries_are_named() {
        let err = CidrSet::parse(["10.0.0.0/8", "10.0.0.0/33"])
            .err()
            .expect("error");
        assert!(err.contains("10.0.0.0/33"), "{err}");
        let err = parse_list("# partners\n10.0.0.0/8\n\nnot-an-ip # oops\n").expect_err("error");
        assert!(err.starts_with("line 4"), "{err}");
    }

    #[test]
    fn host_bits_are_ignored() {
        let set = CidrSet::parse(["192.168.1.77/24"]).expect("set");
        assert!(set.contains(ip("192.168.1.1")));
    }
}
