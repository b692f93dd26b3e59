//! The client address behind trusted proxies, from X-Forwarded-For. This
//! decides whose address an event records, so every case is pinned in the
//! table test below (modelled on registry.k8s.io's `pkg/net/clientip`).

use http::HeaderMap;
use std::net::IpAddr;

/// The client's address, as the entry point knows it (socket peer locally,
/// API Gateway's `sourceIp` in Lambda), put into the request's extensions.
/// Locally, behind trusted proxies, [`from_forwarded`] finds it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// The client address: the socket peer, or behind `trusted` proxies the
/// X-Forwarded-For entry the outermost trusted proxy added, `trusted`
/// places from the right over all header lines in order. Entries a client
/// wrote itself sit further left and are never read.
///
/// The socket peer is the answer, logged at debug only (a client talking
/// to us directly can cause either at will), when there are fewer entries
/// than trusted proxies (a proxy is missing or the count is too high) and
/// when the entry read is no bare IP address (garbage, or `addr:port`,
/// which no proxy we trust writes). Lines are split on commas as bytes: a
/// client's bytes that are not ASCII make an unreadable entry, counted like
/// any other, so they cannot remove the entries a proxy appended to the same
/// line and shift which entry is read.
pub fn from_forwarded(peer: IpAddr, headers: &HeaderMap, trusted: usize) -> IpAddr {
    if trusted == 0 {
        return peer;
    }
    // From the right, without collecting: the last line's last entry first.
    let entry = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .rev()
        .flat_map(|line| line.as_bytes().rsplit(|byte| *byte == b','))
        .nth(trusted - 1);
    let Some(entry) = entry else {
        tracing::debug!(
            trusted,
            "fewer X-Forwarded-For entries than trusted proxies: the client is the socket peer"
        );
        return peer;
    };
    let addr = std::str::from_utf8(entry)
        .ok()
        .and_then(|entry| entry.trim().parse().ok());
    addr.unwrap_or_else(|| {
        tracing::debug!(
            entry = %String::from_utf8_lossy(&entry[..entry.len().min(64)]),
            "X-Forwarded-For entry is no IP address: the client is the socket peer"
        );
        peer
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "10.0.0.1";

    /// Name, X-Forwarded-For lines in order, trusted proxies, expected client.
    #[rustfmt::skip]
    const CASES: &[(&str, &[&[u8]], usize, &str)] = &[
        ("no header, no proxy", &[], 0, PEER),
        ("no header, one trusted proxy", &[], 1, PEER),
        ("trusted 0 ignores the header", &[b"8.8.8.8"], 0, PEER),
        ("one trusted proxy, one entry", &[b"8.8.8.8"], 1, "8.8.8.8"),
        ("one trusted proxy reads the rightmost", &[b"6.6.6.6, 8.8.8.8"], 1, "8.8.8.8"),
        ("two trusted proxies", &[b"6.6.6.6, 8.8.8.8, 172.16.0.2"], 2, "8.8.8.8"),
        ("spoofed entries on the left are never read", &[b"1.1.1.1, 2.2.2.2, 6.6.6.6, 8.8.8.8"], 1, "8.8.8.8"),
        ("more trusted than entries: the peer", &[b"8.8.8.8"], 2, PEER),
        ("far more trusted than entries: the peer", &[b"8.8.8.8"], usize::MAX, PEER),
        ("exactly as many entries as trusted", &[b"8.8.8.8, 172.16.0.2"], 2, "8.8.8.8"),
        ("garbage entry: the peer", &[b"6.6.6.6, not-an-ip"], 1, PEER),
        ("garbage further left is not read", &[b"not-an-ip, 8.8.8.8"], 1, "8.8.8.8"),
        ("empty header: the peer", &[b""], 1, PEER),
        ("empty entry: the peer", &[b"8.8.8.8,,172.16.0.2"], 2, PEER),
        ("empty entries count as entries", &[b"8.8.8.8,,172.16.0.2"], 3, "8.8.8.8"),
        ("unknown as the entry: the peer", &[b"unknown"], 1, PEER),
        ("IPv6", &[b"6.6.6.6, 2001:db8::1"], 1, "2001:db8::1"),
        ("IPv4-mapped IPv6 stays IPv6", &[b"::ffff:8.8.8.8"], 1, "::ffff:8.8.8.8"),
        ("bracketed IPv6: the peer", &[b"[2001:db8::1]"], 1, PEER),
        ("IPv6 with port: the peer", &[b"[2001:db8::1]:443"], 1, PEER),
        ("IPv4 with port: the peer", &[b"8.8.8.8:1234"], 1, PEER),
        ("whitespace around entries", &[b"  6.6.6.6 ,\t8.8.8.8  "], 1, "8.8.8.8"),
        ("no space after commas", &[b"6.6.6.6,8.8.8.8,172.16.0.2"], 2, "8.8.8.8"),
        ("several lines read as one list", &[b"6.6.6.6", b"8.8.8.8, 172.16.0.2"], 2, "8.8.8.8"),
        ("the last line holds the rightmost", &[b"6.6.6.6, 7.7.7.7", b"8.8.8.8"], 1, "8.8.8.8"),
        ("entries span lines", &[b"6.6.6.6, 8.8.8.8", b"172.16.0.2"], 2, "8.8.8.8"),
        ("a line that is not ASCII keeps its entries", &[b"8.8.8.8", b"\xff, 7.7.7.7"], 1, "7.7.7.7"),
        ("a non-ASCII entry read: the peer", &[b"8.8.8.8, \xff"], 1, PEER),
        ("non-ASCII cannot shift the entry read", &[b"6.6.6.6", b"\xff, 8.8.8.8", b"172.16.0.2"], 2, "8.8.8.8"),
        ("non-ASCII on the left changes nothing", &[b"\xff, 6.6.6.6", b"8.8.8.8"], 1, "8.8.8.8"),
        ("leading zeros are no address: the peer", &[b"008.008.008.008"], 1, PEER),
    ];

    #[test]
    fn the_client_address_for_each_header_and_trusted_count() {
        let peer: IpAddr = PEER.parse().unwrap();
        for (name, lines, trusted, expected) in CASES {
            let mut headers = HeaderMap::new();
            for line in *lines {
                headers.append(
                    X_FORWARDED_FOR,
                    http::HeaderValue::from_bytes(line).unwrap(),
                );
            }
            let expected: IpAddr = expected.parse().unwrap();
            assert_eq!(from_forwarded(peer, &headers, *trusted), expected, "{name}");
        }
    }

    #[test]
    fn other_headers_are_never_read() {
        let mut headers = HeaderMap::new();
        headers.insert("x-real-ip", "8.8.8.8".parse().unwrap());
        headers.insert("forwarded", "for=8.8.8.8".parse().unwrap());
        let peer: IpAddr = PEER.parse().unwrap();
        assert_eq!(from_forwarded(peer, &headers, 1), peer);
    }
}
