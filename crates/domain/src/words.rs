//! Byte slices eight at a time, as `u64` words: checks that run over
//! request text on every request, without a libc call per short slice.

/// Up to eight bytes as one word, the rest filled with `pad`. Inlined, so
/// that a whole chunk of eight is one load rather than a copy.
#[inline(always)]
pub(crate) fn word(bytes: &[u8], pad: u8) -> u64 {
    let mut word = [pad; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_ne_bytes(word)
}

/// A chunk of exactly eight bytes as one word (`chunks_exact(8)`): as
/// [`word`] when optimized, and without its copy's checks in debug builds.
#[inline(always)]
pub(crate) fn word8(chunk: &[u8], pad: u8) -> u64 {
    match <[u8; 8]>::try_from(chunk) {
        Ok(eight) => u64::from_ne_bytes(eight),
        // Not eight bytes after all: still every byte, padded.
        Err(_) => word(chunk, pad),
    }
}

/// `a == b`. Measured: slice equality calls libc's `memcmp`, whose AVX-512
/// path cost more per call here than the rest of a client-id cache hit.
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (mut left, mut right) = (a.chunks_exact(8), b.chunks_exact(8));
    a.len() == b.len()
        && (&mut left)
            .zip(&mut right)
            .all(|(x, y)| word(x, 0) == word(y, 0))
        && word(left.remainder(), 0) == word(right.remainder(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        for (a, b) in [
            ("", ""),
            ("docker/24", "docker/24"),
            ("docker/24.0.7 go/go1.20", "docker/24.0.7 go/go1.21"),
            ("docker/24.0.7 go/go1.20", "docker/24.0.7 go/go1.2"),
            ("abcdefgh", "abcdefgx"),
            ("xbcdefgh", "abcdefgh"),
        ] {
            assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
        }
    }

    #[test]
    fn words_pad_short_slices() {
        assert_eq!(word(b"", b'a'), u64::from_ne_bytes(*b"aaaaaaaa"));
        assert_eq!(word(b"xyz", 0), u64::from_ne_bytes(*b"xyz\0\0\0\0\0"));
        assert_eq!(word(b"12345678", 0), u64::from_ne_bytes(*b"12345678"));
        assert_eq!(word8(b"12345678", 0), word(b"12345678", 0));
        assert_eq!(word8(b"123", b'a'), word(b"123", b'a'));
    }
}
