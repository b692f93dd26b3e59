//! Privacy by design: the raw address never reaches storage. What is kept is
//! a keyed hash (HMAC-SHA256) of address and user agent (the client id), one
//! of the address alone (the network source, for organization feedback),
//! both rotated with the period's start in the key input, and the address
//! truncated to its network prefix (/24 IPv4, /48 IPv6; /64 for IPv6
//! uniqueness).

use crate::inline_str::InlineStr;
use ring::hmac;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How often client ids change: a longer period counts returning users over
/// longer ranges, a shorter one links less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Day,
    Month,
    Never,
}

impl std::str::FromStr for Rotation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" | "daily" => Ok(Rotation::Day),
            "month" | "monthly" => Ok(Rotation::Month),
            "never" => Ok(Rotation::Never),
            other => Err(format!(
                "unknown rotation {other:?}: expected day, month or never"
            )),
        }
    }
}

/// Slots of the per-thread id cache (a power of two).
const ID_CACHE_SLOTS: usize = 4096;

/// One cached pair of ids, with everything it was computed from: a hit is
/// verified against the full key, so a crafted hash collision can never
/// hand one client another's id.
struct CachedIds {
    hasher: HasherId,
    addr: IpAddr,
    day_number: i64,
    user_agent: Box<str>,
    ids: ClientIds,
}

/// Per-thread: a client's requests arrive on one connection, so on one
/// worker thread. Direct-mapped (a slot per hash, the newest client wins
/// it): a hit costs one hash and one comparison, and the cache never grows.
/// Randomly seeded hashing, so collisions cannot be planned; one would
/// only cost the two HMACs again.
struct IdCache {
    keys: foldhash::fast::RandomState,
    slots: Box<[Option<CachedIds>]>,
}

thread_local! {
    static ID_CACHE: std::cell::RefCell<IdCache> = std::cell::RefCell::new(IdCache {
        keys: foldhash::fast::RandomState::default(),
        slots: (0..ID_CACHE_SLOTS).map(|_| None).collect(),
    });
}

pub struct ClientHasher {
    key: hmac::Key,
    rotation: Rotation,
    /// What the id cache knows this hasher's key and rotation by.
    id: HasherId,
}

/// Identifies one [`ClientHasher`] (its key and rotation) in the id cache,
/// for the life of the process. Not the hasher's address: a hasher dropped
/// and another built in its place (a new key, a new rotation) would reuse
/// it and be handed ids the old key made; and a moved hasher would miss.
/// Not a fingerprint of the secret either: hashing it is a cost, and its
/// result would sit in every slot. A counter is unique and free to compare;
/// 2^64 hashers are never built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HasherId(u64);

impl HasherId {
    fn next() -> HasherId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        HasherId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// 128 bits of a MAC as 32 hex characters.
pub type HexId = InlineStr<32>;

/// The ids of one request's client (copied, never allocated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIds {
    /// HMAC(address /64-for-IPv6, user agent, period): unique pullers.
    pub client_id: HexId,
    /// HMAC(address, period): the network source.
    pub network_id: HexId,
}

impl ClientHasher {
    pub fn new(secret: &[u8], rotation: Rotation) -> Self {
        ClientHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            rotation,
            id: HasherId::next(),
        }
    }

    /// `day_number` is days since the Unix epoch (UTC). A client makes
    /// several requests per pull: its ids come from a per-thread cache
    /// after the first (two HMACs are most of an event's cost).
    pub fn ids(&self, addr: IpAddr, user_agent: &str, day_number: i64) -> ClientIds {
        use std::hash::BuildHasher;
        let hasher = self.id;
        ID_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let slot = cache.keys.hash_one((hasher, addr, day_number, user_agent)) as usize
                & (ID_CACHE_SLOTS - 1);
            if let Some(hit) = &cache.slots[slot] {
                if hit.hasher == hasher
                    && hit.addr == addr
                    && hit.day_number == day_number
                    && crate::words::same_bytes(hit.user_agent.as_bytes(), user_agent.as_bytes())
                {
                    return hit.ids;
                }
            }
            let ids = self.compute(addr, user_agent, day_number);
            cache.slots[slot] = Some(CachedIds {
                hasher,
                addr,
                day_number,
                user_agent: user_agent.into(),
                ids,
            });
            ids
        })
    }

    fn compute(&self, addr: IpAddr, user_agent: &str, day_number: i64) -> ClientIds {
        let period: i64 = match self.rotation {
            Rotation::Day => day_number,
            Rotation::Month => {
                let (y, m, _) = crate::time::civil_from_days(day_number);
                y * 12 + m as i64
            }
            Rotation::Never => 0,
        };
        let unique = uniqueness_address(addr);
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"client\0");
        ctx.update(&period.to_be_bytes());
        ctx.update(&addr_bytes(unique));
        ctx.update(user_agent.as_bytes());
        let client_id = hex16(ctx.sign().as_ref());
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"network\0");
        ctx.update(&period.to_be_bytes());
        ctx.update(&addr_bytes(addr));
        let network_id = hex16(ctx.sign().as_ref());
        ClientIds {
            client_id,
            network_id,
        }
    }
}

fn addr_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// IPv6 clients rotate addresses inside their /64: count them by it.
fn uniqueness_address(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6, 64)),
    }
}

/// 16 bytes of the MAC as 32 hex characters: plenty against collisions.
fn hex16(bytes: &[u8]) -> HexId {
    let mut text = [b'0'; 32];
    crate::text::put_hex_bytes(&mut text, bytes);
    let mut out = HexId::new();
    // Hex digits only, and exactly 32 of them: neither step can fail.
    let _ = out.write_str(std::str::from_utf8(&text).unwrap_or_default());
    out
}

fn mask_v6(addr: Ipv6Addr, bits: u32) -> Ipv6Addr {
    let value = u128::from(addr);
    Ipv6Addr::from(value & (!0u128 << (128 - bits)))
}

/// A network prefix in text: `255.255.255.0/24` or `ffff:ffff:ffff::/48`.
pub type PrefixText = InlineStr<48>;

/// The stored network prefix: /24 for IPv4, /48 for IPv6, IPv4-mapped IPv6
/// treated as IPv4.
pub fn network_prefix(addr: IpAddr) -> PrefixText {
    let mut out = PrefixText::new();
    let _ = match addr {
        IpAddr::V4(v4) => v4_prefix(v4, &mut out),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_prefix(v4, &mut out),
            None => write!(out, "{}/48", mask_v6(v6, 48)),
        },
    };
    out
}

/// `a.b.c.0/24`, digits placed by hand: every event and access line has
/// one, and `write!` costs several times more.
fn v4_prefix(v4: Ipv4Addr, out: &mut PrefixText) -> std::fmt::Result {
    let [a, b, c, _] = v4.octets();
    // Three octets of at most three digits and a dot each, then `0/24`.
    let mut text = [0u8; 16];
    let mut len = 0;
    for octet in [a, b, c] {
        let digits = crate::text::decimal(octet.into(), 0);
        let end = len + digits.len();
        text[len..end].copy_from_slice(digits.as_bytes());
        text[end] = b'.';
        len = end + 1;
    }
    text[len..len + 4].copy_from_slice(b"0/24");
    out.write_str(std::str::from_utf8(&text[..len + 4]).map_err(|_| std::fmt::Error)?)
}

/// `DNT: 1` or `Sec-GPC: 1`: the client asked not to be tracked, so the
/// event carries no client ids (it is still counted).
pub fn opted_out(dnt: Option<&str>, gpc: Option<&str>) -> bool {
    dnt.is_some_and(|v| v.trim() == "1") || gpc.is_some_and(|v| v.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            network_prefix("203.0.113.77".parse().unwrap()).as_str(),
            "203.0.113.0/24"
        );
        assert_eq!(
            network_prefix("2001:db8:1234:5678::1".parse().unwrap()).as_str(),
            "2001:db8:1234::/48"
        );
        assert_eq!(
            network_prefix("::ffff:198.51.100.9".parse().unwrap()).as_str(),
            "198.51.100.0/24"
        );
        for (addr, prefix) in [
            ("0.0.0.0", "0.0.0.0/24"),
            ("9.10.99.1", "9.10.99.0/24"),
            ("100.200.255.255", "100.200.255.0/24"),
        ] {
            assert_eq!(network_prefix(addr.parse().unwrap()).as_str(), prefix);
        }
    }

    #[test]
    fn ids_are_keyed_rotated_and_hide_the_address() {
        let h = ClientHasher::new(b"secret", Rotation::Day);
        let a: IpAddr = "203.0.113.77".parse().unwrap();
        let ids = h.ids(a, "docker/24", 20_000);
        assert_eq!(ids, h.ids(a, "docker/24", 20_000));
        assert_ne!(ids.client_id, h.ids(a, "podman/4", 20_000).client_id);
        assert_eq!(ids.network_id, h.ids(a, "podman/4", 20_000).network_id);
        assert_ne!(ids, h.ids(a, "docker/24", 20_001));
        assert_ne!(
            ids,
            ClientHasher::new(b"other", Rotation::Day).ids(a, "docker/24", 20_000)
        );
        assert!(!ids.client_id.contains("203"));
        assert_eq!(ids.client_id.len(), 32);
        let monthly = ClientHasher::new(b"secret", Rotation::Month);
        assert_eq!(monthly.ids(a, "x", 20_000), monthly.ids(a, "x", 20_001));
        // IPv6 privacy addresses inside one /64 are one client.
        let v6a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(h.ids(v6a, "x", 1).client_id, h.ids(v6b, "x", 1).client_id);
    }

    #[test]
    fn a_hasher_built_where_another_was_never_gets_its_cached_ids() {
        let a: IpAddr = "203.0.113.77".parse().unwrap();
        let expected = ClientHasher::new(b"second", Rotation::Day).compute(a, "ua", 7);
        // Built in the same place, one after the other: the cache must
        // tell them apart by what they are, not where they live.
        let mut slot = Some(ClientHasher::new(b"first", Rotation::Day));
        let first = slot.as_ref().unwrap().ids(a, "ua", 7);
        slot = Some(ClientHasher::new(b"second", Rotation::Day));
        let second = slot.as_ref().unwrap().ids(a, "ua", 7);
        assert_ne!(first, second);
        assert_eq!(second, expected);
        // A moved hasher is still itself: same ids, from the cache.
        let moved = Box::new(slot.take().unwrap());
        assert_eq!(moved.ids(a, "ua", 7), expected);
    }

    #[test]
    fn hex_ids_are_the_macs_first_sixteen_bytes() {
        let mac: Vec<u8> = (0u8..32).map(|b| b.wrapping_mul(37)).collect();
        let expected: String = mac[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex16(&mac).as_str(), expected);
    }

    #[test]
    fn opt_out_headers() {
        assert!(opted_out(Some("1"), None));
        assert!(opted_out(None, Some("1")));
        assert!(!opted_out(Some("0"), None));
        assert!(!opted_out(None, None));
    }
}
