//! `@ipMatch` and `@ipMatchFromFile`: membership of the input address in a list of IPv4 and
//! IPv6 addresses and CIDR blocks.

use std::net::IpAddr;
use std::path::Path;

/// Networks as (address, prefix length); an address without a prefix is a full-length block.
#[derive(Debug)]
pub(super) struct IpSet {
    networks: Vec<(IpAddr, u8)>,
}

impl IpSet {
    /// Parses a comma-separated list such as `127.0.0.1,10.0.0.0/8,::1`.
    pub(super) fn parse_list(param: &str) -> Result<IpSet, String> {
        let networks = param
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_network)
            .collect::<Result<Vec<_>, _>>()?;
        if networks.is_empty() {
            return Err("no addresses to match".to_owned());
        }
        Ok(IpSet { networks })
    }

    /// Reads one address or block per line; blank lines and `#` comments are skipped.
    pub(super) fn from_file(param: &str, rules_dir: &Path) -> Result<IpSet, String> {
        let path = rules_dir.join(param.trim());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read address file {}: {e}", path.display()))?;
        let mut networks = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            networks.push(
                parse_network(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?,
            );
        }
        Ok(IpSet { networks })
    }

    /// Whether the text `input` is an address inside one of the networks; text that is not an
    /// address never matches.
    pub(super) fn contains_text(&self, input: &[u8]) -> bool {
        let Some(addr) = std::str::from_utf8(input)
            .ok()
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
        else {
            return false;
        };
        self.networks
            .iter()
            .any(|&(net, prefix)| in_network(addr, net, prefix))
    }
}

fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("invalid IP address {text:?}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.trim().parse::<u8>() {
            Ok(p) if p <= max => p,
            _ => return Err(format!("invalid prefix length in {text:?}")),
        },
    };
    Ok((addr, prefix))
}

fn in_network(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (a, n, bits) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    // A zero-length prefix matches everything of the family.
    shift >= 128 || (a >> shift) == (n >> shift)
}
