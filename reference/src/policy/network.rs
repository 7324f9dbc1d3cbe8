//! Network lists (`mynetworks`, `smtpd_sasl_exceptions_networks`): `address`,
//! `address/len`, `[ipv6]` and `[ipv6]/len` elements, each optionally negated with `!`,
//! separated by commas and/or whitespace (postconf(5) mynetworks).
//!
//! Matching follows Postfix's match lists: the first element that matches decides,
//! a negated one excluding the address; an address no element matches is not in the
//! list. An IPv4-mapped IPv6 client address (`::ffff:192.0.2.1`) is matched as the
//! IPv4 address, as Postfix normalizes it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::ConfigErrorKind;
use super::maincf::split_list;

/// One network block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this block. IPv4 blocks never match IPv6 addresses (after
    /// mapped-address normalization) and the other way round.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, normalize(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}/{}", self.prefix),
            IpAddr::V6(a) => write!(f, "[{a}]/{}", self.prefix),
        }
    }
}

fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32u8.saturating_sub(p.min(32))),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128u8.saturating_sub(p.min(128))),
    }
}

/// A parsed network list.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NetworkList {
    entries: Vec<(bool, Cidr)>,
}

impl NetworkList {
    /// Parse a list. Host names, `/file/name` and `type:table` elements are refused;
    /// an IPv6 address must be written inside `[]`, as postconf(5) requires.
    pub fn parse(value: &str) -> Result<NetworkList, ConfigErrorKind> {
        let mut entries = Vec::new();
        for item in split_list(value) {
            let (negated, body) = match item.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            entries.push((negated, parse_cidr(item, body)?));
        }
        Ok(NetworkList { entries })
    }

    /// True when the list has no element, so it matches no address.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `ip` is in the list.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.entries
            .iter()
            .find(|(_, cidr)| cidr.contains(ip))
            .is_some_and(|(negated, _)| !negated)
    }
}

impl fmt::Display for NetworkList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (negated, cidr)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if *negated {
                f.write_str("!")?;
            }
            write!(f, "{cidr}")?;
        }
        Ok(())
    }
}

fn parse_cidr(item: &str, body: &str) -> Result<Cidr, ConfigErrorKind> {
    let bad = |reason| ConfigErrorKind::BadNetwork {
        item: item.to_owned(),
        reason,
    };
    if body.starts_with('/') {
        return Err(ConfigErrorKind::UnsupportedPattern {
            item: item.to_owned(),
        });
    }
    let (addr, prefix) = match body.strip_prefix('[') {
        Some(rest) => {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(bad("missing ]"));
            };
            let v6: Ipv6Addr = inside
                .parse()
                .map_err(|_| bad("not an IPv6 address inside []"))?;
            let prefix = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix('/')
                        .ok_or_else(|| bad("unexpected text after ]"))?,
                ),
            };
            (IpAddr::V6(v6), prefix)
        }
        None => {
            let (addr, prefix) = match body.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (body, None),
            };
            if addr.contains(':') {
                // Postfix would read this as a `type:table` lookup.
                if addr.parse::<Ipv6Addr>().is_ok() {
                    return Err(bad("IPv6 addresses must be written inside []"));
                }
                return Err(ConfigErrorKind::UnsupportedPattern {
                    item: item.to_owned(),
                });
            }
            let v4: Ipv4Addr = addr
                .parse()
                .map_err(|_| bad("not an IPv4 address (host names are not resolved)"))?;
            (IpAddr::V4(v4), prefix)
        }
    };
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the mask length is not a number"));
            }
            let n: u8 = p
                .parse()
                .map_err(|_| bad("the mask length is not a number"))?;
            if n > max {
                return Err(bad("the mask length is too large"));
            }
            n
        }
    };
    let host_bits = match addr {
        IpAddr::V4(a) => u32::from(a) & !mask32(prefix) != 0,
        IpAddr::V6(a) => u128::from(a) & !mask128(prefix) != 0,
    };
    if host_bits {
        return Err(ConfigErrorKind::NonNullHostBits {
            item: item.to_owned(),
        });
    }
    Ok(Cidr { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn masks() {
        assert_eq!(mask32(0), 0);
        assert_eq!(mask32(8), 0xff00_0000);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask128(128), u128::MAX);
        assert_eq!(mask128(1), 1u128 << 127);
    }

    #[test]
    fn zero_prefix_matches_everything_of_its_family() {
        let l = NetworkList::parse("0.0.0.0/0").unwrap();
        assert!(l.contains(ip("203.0.113.9")));
        assert!(!l.contains(ip("2001:db8::1")));
    }

    #[test]
    fn mapped_ipv4_matches_ipv4_block() {
        let l = NetworkList::parse("192.0.2.0/24").unwrap();
        assert!(l.contains(ip("::ffff:192.0.2.7")));
    }
}
