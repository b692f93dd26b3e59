//! Which token realms the gateway may fetch. The realm comes from the
//! upstream's own challenge, and the gateway can reach what its clients
//! cannot (the cloud's metadata service, loopback, the private network),
//! so a realm is used only
//! - over https, or over http when the upstream itself is plain http;
//! - at a public address, or at an address of the same kind as the
//!   upstream's own (a loopback upstream may name a loopback realm, a
//!   private one a private realm); never at a metadata address or an
//!   unspecified, broadcast or multicast one.
//!
//! An IP literal is checked here; a name is checked on what it resolves
//! to, by the resolver of the client that fetches realms (router), with
//! the same [`Allowed`] set, at connection time, so a name cannot resolve
//! to one address for a check and another for the call.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP is, for the realm rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, 100.64.0.0/10 (shared), fc00::/7 (unique local).
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 169.254.169.254, fd00:ec2::254: instance credentials live there.
    Metadata,
    /// Unspecified, broadcast, multicast: never a realm.
    Reserved,
}

pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddressClass::Private
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        AddressClass::Metadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if first & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if first & 0xfe00 == 0xfc00 {
        AddressClass::Private
    } else if ip.is_unspecified() || ip.is_multicast() {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// The non-public kinds of address a realm may be at, from the kinds of
/// address the upstream itself is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Allowed {
    pub loopback: bool,
    pub private: bool,
    pub link_local: bool,
}

impl Allowed {
    /// Public addresses only.
    pub const PUBLIC: Allowed = Allowed {
        loopback: false,
        private: false,
        link_local: false,
    };

    pub fn for_upstream(addresses: impl IntoIterator<Item = IpAddr>) -> Allowed {
        addresses
            .into_iter()
            .fold(Allowed::PUBLIC, |allowed, ip| match classify(ip) {
                AddressClass::Loopback => Allowed {
                    loopback: true,
                    ..allowed
                },
                AddressClass::Private => Allowed {
                    private: true,
                    ..allowed
                },
                AddressClass::LinkLocal => Allowed {
                    link_local: true,
                    ..allowed
                },
                _ => allowed,
            })
    }

    pub fn admits(&self, ip: IpAddr) -> bool {
        match classify(ip) {
            AddressClass::Public => true,
            AddressClass::Loopback => self.loopback,
            AddressClass::Private => self.private,
            AddressClass::LinkLocal => self.link_local,
            AddressClass::Metadata | AddressClass::Reserved => false,
        }
    }
}

/// The host of a realm URL that passed the checks here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealmHost<'a> {
    /// Already checked.
    Ip(IpAddr),
    /// To be checked on what it resolves to.
    Name(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealmError {
    #[error("token realm is not an absolute http(s) URL")]
    NotUrl,
    #[error("token realm over {realm} refused for an upstream over {upstream}: https, or the upstream's own scheme")]
    Scheme {
        realm: &'static str,
        upstream: &'static str,
    },
    #[error("token realm at {0} refused: not an address the upstream's realm may be at")]
    Address(IpAddr),
}

/// The host of a URL's authority: `[v6]`, a v4 literal or a name; the
/// port and nothing else after it. Userinfo is refused (it makes the
/// host ambiguous to readers).
fn host_of(rest: &str) -> Option<&str> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return (after.is_empty() || after.starts_with(':')).then_some(host);
    }
    let host = authority.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

fn scheme_of(url: &str) -> Option<(&'static str, &str)> {
    let lower = url.get(..8).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("https://") => Some(("https", &url[8..])),
        _ if url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://")) =>
        {
            Some(("http", &url[7..]))
        }
        _ => None,
    }
}

/// Checks `realm` for an upstream at `upstream_base` (`scheme://authority`)
/// whose addresses gave `allowed`.
pub fn check<'r>(
    realm: &'r str,
    upstream_base: &str,
    allowed: Allowed,
) -> Result<RealmHost<'r>, RealmError> {
    let (scheme, rest) = scheme_of(realm).ok_or(RealmError::NotUrl)?;
    let upstream = scheme_of(upstream_base).map_or("https", |(s, _)| s);
    if scheme == "http" && upstream != "http" {
        return Err(RealmError::Scheme {
            realm: scheme,
            upstream,
        });
    }
    let host = host_of(rest).ok_or(RealmError::NotUrl)?;
    match host.parse::<IpAddr>() {
        Ok(ip) if allowed.admits(ip) => Ok(RealmHost::Ip(ip)),
        Ok(ip) => Err(RealmError::Address(ip)),
        Err(_) => {
            let name_ok = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if name_ok {
                Ok(RealmHost::Name(host))
            } else {
                Err(RealmError::NotUrl)
            }
        }
    }
}

/// The host of the upstream's base URL, for finding its addresses.
pub fn upstream_host(upstream_base: &str) -> Option<&str> {
    let (_, rest) = scheme_of(upstream_base)?;
    host_of(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_are_classified() {
        use AddressClass::*;
        for (addr, class) in [
            ("8.8.8.8", Public),
            ("2606:4700::1111", Public),
            ("127.0.0.1", Loopback),
            ("127.8.9.10", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("::ffff:169.254.169.254", Metadata),
            ("fd00:ec2::254", Metadata),
            ("0.0.0.0", Reserved),
            ("::", Reserved),
            ("255.255.255.255", Reserved),
            ("224.0.0.1", Reserved),
            ("ff02::1", Reserved),
        ] {
            assert_eq!(classify(ip(addr)), class, "{addr}");
        }
    }

    #[test]
    fn the_upstream_decides_which_non_public_addresses_a_realm_may_be_at() {
        let public = Allowed::for_upstream([ip("8.8.8.8")]);
        let loopback = Allowed::for_upstream([ip("127.0.0.1")]);
        let private = Allowed::for_upstream([ip("10.0.0.5"), ip("fd00::5")]);
        let link = Allowed::for_upstream([ip("169.254.3.4")]);
        let metadata = Allowed::for_upstream([ip("169.254.169.254")]);
        // (allowed, realm address, admitted)
        for (allowed, addr, admitted) in [
            (public, "1.1.1.1", true),
            (public, "127.0.0.1", false),
            (public, "::1", false),
            (public, "10.0.0.1", false),
            (public, "192.168.0.1", false),
            (public, "fd00::1", false),
            (public, "169.254.10.10", false),
            (public, "fe80::1", false),
            (public, "169.254.169.254", false),
            (public, "fd00:ec2::254", false),
            (loopback, "127.0.0.1", true),
            (loopback, "::1", true),
            (loopback, "10.0.0.1", false),
            (loopback, "169.254.169.254", false),
            (private, "10.9.9.9", true),
            (private, "fc00::9", true),
            (private, "127.0.0.1", false),
            (link, "169.254.10.10", true),
            (link, "169.254.169.254", false),
            (metadata, "169.254.169.254", false),
            (metadata, "169.254.1.1", false),
            (loopback, "0.0.0.0", false),
        ] {
            assert_eq!(allowed.admits(ip(addr)), admitted, "{allowed:?} {addr}");
        }
    }

    #[test]
    fn realm_urls_are_checked_for_scheme_and_literal_address() {
        let public = Allowed::PUBLIC;
        let loopback = Allowed::for_upstream([ip("127.0.0.1")]);
        let https = "https://registry.example";
        let http = "http://127.0.0.1:5000";
        // (realm, upstream base, allowed, result)
        let cases: [(&str, &str, Allowed, Result<RealmHost, RealmError>); 14] = [
            (
                "https://auth.docker.io/token",
                https,
                public,
                Ok(RealmHost::Name("auth.docker.io")),
            ),
            (
                "HTTPS://Auth.example:8443/t?x=1",
                https,
                public,
                Ok(RealmHost::Name("Auth.example")),
            ),
            (
                "http://auth.example/token",
                https,
                public,
                Err(RealmError::Scheme {
                    realm: "http",
                    upstream: "https",
                }),
            ),
            (
                "http://127.0.0.1:5001/token",
                http,
                loopback,
                Ok(RealmHost::Ip(ip("127.0.0.1"))),
            ),
            (
                "https://127.0.0.1/token",
                http,
                loopback,
                Ok(RealmHost::Ip(ip("127.0.0.1"))),
            ),
            (
                "https://127.0.0.1/token",
                https,
                public,
                Err(RealmError::Address(ip("127.0.0.1"))),
            ),
            (
                "http://169.254.169.254/latest/meta-data/",
                http,
                loopback,
                Err(RealmError::Address(ip("169.254.169.254"))),
            ),
            (
                "https://[fd00:ec2::254]/",
                https,
                public,
                Err(RealmError::Address(ip("fd00:ec2::254"))),
            ),
            (
                "https://[::1]:8443/token",
                https,
                loopback,
                Ok(RealmHost::Ip(ip("::1"))),
            ),
            (
                "https://10.0.0.1/token",
                https,
                public,
                Err(RealmError::Address(ip("10.0.0.1"))),
            ),
            (
                "https://user@evil.example/token",
                https,
                public,
                Err(RealmError::NotUrl),
            ),
            (
                "ftp://auth.example/token",
                https,
                public,
                Err(RealmError::NotUrl),
            ),
            ("/token", https, public, Err(RealmError::NotUrl)),
            (
                "https://[::1/token",
                https,
                loopback,
                Err(RealmError::NotUrl),
            ),
        ];
        for (realm, base, allowed, expected) in cases {
            assert_eq!(check(realm, base, allowed), expected, "{realm} for {base}");
        }
        assert_eq!(upstream_host("http://127.0.0.1:5000"), Some("127.0.0.1"));
        assert_eq!(upstream_host("https://[::1]:5000"), Some("::1"));
        assert_eq!(
            upstream_host("https://registry-1.docker.io"),
            Some("registry-1.docker.io")
        );
    }
}
