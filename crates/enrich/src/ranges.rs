//! Sorted, non-overlapping IP ranges with a value each, IPv4 and IPv6 kept
//! apart (IPv4 in u32 halves the memory of the larger table).

use crate::LoadError;
use std::collections::HashMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

pub struct RangeSet<T> {
    v4: Vec<(u32, u32, T)>,
    v6: Vec<(u128, u128, T)>,
}

impl<T> Default for RangeSet<T> {
    fn default() -> Self {
        RangeSet {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

impl<T> RangeSet<T> {
    pub fn push(&mut self, start: IpAddr, end: IpAddr, value: T) {
        match (start, end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => self.v4.push((s.into(), e.into(), value)),
            (IpAddr::V6(s), IpAddr::V6(e)) => self.v6.push((s.into(), e.into(), value)),
            _ => {}
        }
    }

    pub fn sort(&mut self) {
        self.v4.sort_by_key(|r| r.0);
        self.v6.sort_by_key(|r| r.0);
    }

    /// Coalesces overlapping ranges (after `sort`), keeping the first value:
    /// binary search needs disjoint ranges.
    pub fn merge_overlaps(&mut self) {
        fn merge<K: Ord + Copy, T>(list: &mut Vec<(K, K, T)>) {
            let mut out: Vec<(K, K, T)> = Vec::with_capacity(list.len());
            for range in list.drain(..) {
                match out.last_mut() {
                    Some(last) if range.0 <= last.1 => {
                        if range.1 > last.1 {
                            last.1 = range.1;
                        }
                    }
                    _ => out.push(range),
                }
            }
            *list = out;
        }
        merge(&mut self.v4);
        merge(&mut self.v6);
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.v4.capacity() * std::mem::size_of::<(u32, u32, T)>()
            + self.v6.capacity() * std::mem::size_of::<(u128, u128, T)>()
    }

    pub fn find(&self, addr: IpAddr) -> Option<&T> {
        match addr {
            IpAddr::V4(v4) => find_in(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => find_in(&self.v4, u32::from(v4)),
                None => find_in(&self.v6, u128::from(v6)),
            },
        }
    }

    /// Loads `start,end,...` lines; `value` turns the fields into T.
    pub fn load_csv(
        &mut self,
        path: &Path,
        columns: usize,
        mut value: impl FnMut(&[&str]) -> Result<T, String>,
    ) -> Result<usize, LoadError> {
        let display = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
            path: display.clone(),
            source,
        })?;
        let mut count = 0;
        for (index, line) in std::io::BufReader::with_capacity(1 << 20, file)
            .lines()
            .enumerate()
        {
            let line = line.map_err(|source| LoadError::Io {
                path: display.clone(),
                source,
            })?;
            let bad = |message: String| LoadError::Format {
                path: display.clone(),
                line: index + 1,
                message,
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields: Vec<&str> = Vec::with_capacity(columns);
            split_csv(&line, &mut fields);
            if fields.len() < columns {
                return Err(bad(format!(
                    "expected {columns} columns, found {}",
                    fields.len()
                )));
            }
            let start: IpAddr = fields[0]
                .parse()
                .map_err(|_| bad(format!("bad address {:?}", fields[0])))?;
            let end: IpAddr = fields[1]
                .parse()
                .map_err(|_| bad(format!("bad address {:?}", fields[1])))?;
            let v = value(&fields).map_err(bad)?;
            self.push(start, end, v);
            count += 1;
        }
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
        self.sort();
        Ok(count)
    }
}

fn find_in<K: Ord + Copy, T>(ranges: &[(K, K, T)], key: K) -> Option<&T> {
    let after = ranges.partition_point(|r| r.0 <= key);
    let candidate = ranges.get(after.checked_sub(1)?)?;
    (key <= candidate.1).then_some(&candidate.2)
}

/// Splits one CSV line; a field in double quotes may hold commas.
fn split_csv<'a>(line: &'a str, out: &mut Vec<&'a str>) {
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push(&quoted[..end]);
            rest = quoted.get(end + 1..).unwrap_or("");
            match rest.strip_prefix(',') {
                Some(next) => rest = next,
                None => return,
            }
        } else {
            match rest.split_once(',') {
                Some((field, next)) => {
                    out.push(field);
                    rest = next;
                }
                None => {
                    out.push(rest);
                    return;
                }
            }
        }
    }
}

pub fn parse_cidr(cidr: &str) -> Option<(IpAddr, IpAddr)> {
    let (addr, bits) = cidr.split_once('/')?;
    let bits: u32 = bits.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let start = u32::from(a) & mask;
            Some((
                Ipv4Addr::from(start).into(),
                Ipv4Addr::from(start | !mask).into(),
            ))
        }
        IpAddr::V6(a) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let start = u128::from(a) & mask;
            Some((
                Ipv6Addr::from(start).into(),
                Ipv6Addr::from(start | !mask).into(),
            ))
        }
        _ => None,
    }
}

/// Interned strings: AS names repeat across thousands of ranges.
#[derive(Default)]
pub struct Strings {
    list: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

impl Strings {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let arc: Arc<str> = Arc::from(s);
        let i = self.list.len() as u32;
        self.list.push(arc.clone());
        self.index.insert(arc, i);
        i
    }

    pub fn get(&self, i: u32) -> Arc<str> {
        self.list
            .get(i as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    pub fn memory_bytes(&self) -> usize {
        self.list.iter().map(|s| s.len() + 16).sum::<usize>() * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        let mut out = Vec::new();
        split_csv(r#"1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc.""#, &mut out);
        assert_eq!(
            out,
            vec!["1.0.0.0", "1.0.0.255", "13335", "Cloudflare, Inc."]
        );
        out.clear();
        split_csv("a,b,,d", &mut out);
        assert_eq!(out, vec!["a", "b", "", "d"]);
    }

    #[test]
    fn lookups() {
        let mut set = RangeSet::default();
        set.push(
            "10.0.0.0".parse().unwrap(),
            "10.0.0.255".parse().unwrap(),
            1,
        );
        set.push(
            "10.0.2.0".parse().unwrap(),
            "10.0.2.255".parse().unwrap(),
            2,
        );
        set.push(
            "2001:db8::".parse().unwrap(),
            "2001:db8::ffff".parse().unwrap(),
            3,
        );
        set.sort();
        let at = |s: &str| set.find(s.parse().unwrap()).copied();
        assert_eq!(at("10.0.0.7"), Some(1));
        assert_eq!(at("10.0.1.7"), None);
        assert_eq!(at("10.0.2.255"), Some(2));
        assert_eq!(at("9.255.255.255"), None);
        assert_eq!(at("::ffff:10.0.0.1"), Some(1));
        assert_eq!(at("2001:db8::10"), Some(3));
        assert_eq!(
            parse_cidr("203.0.113.77/24").map(|r| r.1.to_string()),
            Some("203.0.113.255".into())
        );
        assert_eq!(
            parse_cidr("2001:db8::/48").map(|r| r.0.to_string()),
            Some("2001:db8::".into())
        );
        assert!(parse_cidr("1.2.3.4/33").is_none());
    }
}
