//! Short text formatted into a fixed buffer instead of the heap: event
//! times, network prefixes, client ids and request ids are built once per
//! request on the hot path, and each is a few dozen bytes.

use std::fmt;

/// Up to `N` bytes of UTF-8, kept inline. Writes that do not fit fail
/// (`fmt::Error`) and leave what fitted; callers size `N` for their text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InlineStr<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    pub const fn new() -> Self {
        InlineStr {
            len: 0,
            buf: [0; N],
        }
    }

    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so this never fails.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for InlineStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> std::ops::Deref for InlineStr<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn holds_what_fits_and_refuses_the_rest() {
        let mut s = InlineStr::<8>::new();
        let n = 12;
        write!(s, "{n}-ab").unwrap();
        assert_eq!(s.as_str(), "12-ab");
        assert!(s.write_str("toolong").is_err());
        assert_eq!(&*s, "12-ab");
        s.clear();
        assert!(s.is_empty());
    }
}
