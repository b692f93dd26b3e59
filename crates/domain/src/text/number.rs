//! Unsigned numbers as decimal or lowercase hex digits, without `core::fmt`:
//! every event carries several numbers and ids (status, ASN, duration,
//! request counter, client-id MACs), and `write!` with padding costs
//! several times more than placing the digits.

/// The most digits a [`Digits`] holds: `u64::MAX` in decimal.
pub const MAX_DIGITS: usize = 20;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A number's digits, formatted on the stack.
#[derive(Clone, Copy)]
pub struct Digits {
    /// Right-aligned, zero-filled: padding costs nothing.
    buf: [u8; MAX_DIGITS],
    start: usize,
}

impl Digits {
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever placed, so this never fails.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        MAX_DIGITS - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Digits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `value` in decimal, zero-padded to at least `min_width` digits (0 or 1:
/// no padding). Widths above [`MAX_DIGITS`] are a caller's bug: they are
/// written at `MAX_DIGITS` (and assert in debug builds). Always inlined:
/// a call cost as much as placing a status code's digits, and inlined the
/// loop is shaped to the value (an octet takes at most three rounds).
#[inline(always)]
pub fn decimal(mut value: u64, min_width: usize) -> Digits {
    debug_assert!(min_width <= MAX_DIGITS, "{min_width} digits do not fit");
    let mut buf = [b'0'; MAX_DIGITS];
    let mut start = MAX_DIGITS;
    // Two digits a round from a table: half the divisions (a status code
    // takes two rounds, a duration of a few hundred microseconds two).
    // At most ten rounds: u64::MAX has 20 digits, so `start` never wraps.
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        buf[start] = b'0' + value as u8;
    }
    Digits {
        buf,
        start: start.min(MAX_DIGITS - min_width.min(MAX_DIGITS)),
    }
}

/// `00` to `99`, each two bytes.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `value` in lowercase hex, zero-padded to at least `min_width` digits,
/// like `format!("{value:0min_width$x}")`. Widths above [`MAX_DIGITS`]
/// are treated as in [`decimal`].
#[inline]
pub fn hex(value: u64, min_width: usize) -> Digits {
    debug_assert!(min_width <= MAX_DIGITS, "{min_width} digits do not fit");
    // Four bits a digit, at least one digit (for 0).
    let needed = ((67 - value.leading_zeros()) / 4).max(1) as usize;
    let len = needed.max(min_width).min(MAX_DIGITS);
    let mut buf = [b'0'; MAX_DIGITS];
    let start = MAX_DIGITS - len;
    put_hex(&mut buf[start..], value);
    Digits { buf, start }
}

/// Fills `into` with the last `into.len()` decimal digits of `value`,
/// zero-padded: fixed-width fields such as the parts of a time.
#[inline]
pub fn put_decimal(into: &mut [u8], mut value: u64) {
    for digit in into.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Fills `into` with the last `into.len()` lowercase hex digits of
/// `value`, zero-padded.
#[inline]
pub fn put_hex(into: &mut [u8], value: u64) {
    for (i, digit) in into.iter_mut().rev().enumerate() {
        let nibble = u32::try_from(4 * i)
            .ok()
            .and_then(|shift| value.checked_shr(shift))
            .unwrap_or(0);
        *digit = HEX[(nibble & 0xf) as usize];
    }
}

/// Two lowercase hex digits per byte of `bytes` into `into`, as many as
/// both hold (a MAC as an id: `into` is twice the bytes wanted).
#[inline]
pub fn put_hex_bytes(into: &mut [u8], bytes: &[u8]) {
    for (pair, &byte) in into.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        assert_eq!(decimal(0, 0).as_str(), "0");
        assert_eq!(decimal(0, 3).as_str(), "000");
        assert_eq!(decimal(u64::MAX, 0).as_str(), u64::MAX.to_string());
        assert_eq!(decimal(7, MAX_DIGITS).as_str(), "00000000000000000007");
        assert_eq!(hex(0, 0).as_str(), "0");
        assert_eq!(hex(u64::MAX, 0).as_str(), "ffffffffffffffff");
        assert_eq!(hex(0xabc, 10).as_str(), "0000000abc");
        assert_eq!(hex(1, MAX_DIGITS).as_str(), "00000000000000000001");
        let mut text = *b"xxxxxx";
        put_hex_bytes(&mut text, &[0x0f, 0xa0]);
        assert_eq!(&text, b"0fa0xx");
    }

    proptest! {
        #[test]
        fn decimal_is_format(value in any::<u64>(), width in 0usize..=MAX_DIGITS) {
            prop_assert_eq!(decimal(value, width).as_str().to_string(), format!("{value:0width$}"));
            prop_assert_eq!(decimal(value, width).len(), format!("{value:0width$}").len());
        }

        #[test]
        fn hex_is_format(value in any::<u64>(), width in 0usize..=MAX_DIGITS) {
            prop_assert_eq!(hex(value, width).as_str().to_string(), format!("{value:0width$x}"));
        }

        #[test]
        fn fixed_widths_keep_the_last_digits(value in any::<u64>(), width in 0usize..=24) {
            let mut text = vec![b'x'; width];
            put_decimal(&mut text, value);
            let full = format!("{value:0width$}");
            prop_assert_eq!(&text[..], &full.as_bytes()[full.len() - width..]);
            put_hex(&mut text, value);
            let full = format!("{value:0width$x}");
            prop_assert_eq!(&text[..], &full.as_bytes()[full.len() - width..]);
        }

        #[test]
        fn hex_bytes_are_format(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut text = vec![0u8; bytes.len() * 2];
            put_hex_bytes(&mut text, &bytes);
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(String::from_utf8(text).unwrap(), expected);
        }
    }
}
