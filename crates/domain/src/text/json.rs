//! JSON string escaping: one escaper, serde_json's output byte for byte
//! (`"`, `\` and bytes below 0x20; `\b \f \n \r \t` short, the rest as
//! `\u00xx`), with one documented option for the access log.
//!
//! Events are read back by serde_json, Athena and DataFusion, and a test
//! holds `Event::write_json` to serde_json's bytes: so this is serde_json's
//! rule, not merely valid JSON. Nearly every value needs no escaping (hex
//! ids, times, validated names), so the check runs eight bytes at a time
//! and unescaped text is copied whole.

use super::TextOut;

/// Which bytes are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// serde_json's rule: what events are written with.
    Json,
    /// serde_json's rule and DEL (0x7f) as `\u007f`, for the access log:
    /// its lines are read in terminals and pagers, where DEL is a control
    /// character like those below 0x20 (the log has always escaped it; JSON
    /// allows either form, so the log stays valid JSON).
    JsonAndDel,
}

/// Appends `text` as a JSON string, quotes included.
#[inline]
pub fn write_string(out: &mut impl TextOut, text: &str, rule: Escape) {
    out.push_str("\"");
    write_escaped(out, text, rule);
    out.push_str("\"");
}

/// Appends `text` escaped, without quotes.
#[inline]
pub fn write_escaped(out: &mut impl TextOut, text: &str, rule: Escape) {
    if needs_escape(text.as_bytes(), rule) {
        write_escaped_slowly(out, text, rule);
    } else {
        out.push_str(text);
    }
}

/// The rare path (user agents, names from range files): runs between the
/// bytes that need escaping are copied whole, as serde_json does.
#[cold]
fn write_escaped_slowly(out: &mut impl TextOut, text: &str, rule: Escape) {
    let del = rule == Escape::JsonAndDel;
    let mut run_start = 0;
    for (at, &byte) in text.as_bytes().iter().enumerate() {
        // One load and one test per byte that needs nothing.
        let class = CLASSES[usize::from(byte)];
        if class == PLAIN || (class == DEL && !del) {
            continue;
        }
        // Every escaped byte is ASCII, so `at` and `run_start` are always
        // character boundaries and `get` always succeeds.
        out.push_str(text.get(run_start..at).unwrap_or_default());
        out.push_str(escape(byte));
        run_start = at + 1;
    }
    out.push_str(text.get(run_start..).unwrap_or_default());
}

const PLAIN: u8 = 0;
/// Escaped under every rule.
const JSON: u8 = 1;
/// Escaped under [`Escape::JsonAndDel`] only.
const DEL: u8 = 2;

/// Each byte's class.
static CLASSES: [u8; 256] = {
    let mut classes = [PLAIN; 256];
    let mut byte = 0;
    while byte < 0x20 {
        classes[byte] = JSON;
        byte += 1;
    }
    classes[b'"' as usize] = JSON;
    classes[b'\\' as usize] = JSON;
    classes[0x7f] = DEL;
    classes
};

/// serde_json's escape of each byte below 0x20.
const CONTROLS: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b",
    "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012",
    "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a",
    "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

/// The escape of a byte whose class is not [`PLAIN`].
fn escape(byte: u8) -> &'static str {
    match byte {
        b'"' => "\\\"",
        b'\\' => "\\\\",
        0x7f => "\\u007f",
        _ => CONTROLS.get(usize::from(byte)).copied().unwrap_or_default(),
    }
}

/// Whether `text` has a byte `rule` escapes. Eight bytes at a time (SWAR):
/// a value's bytes are checked on every request, and a byte-by-byte loop
/// was a quarter of building an event.
#[inline]
pub fn needs_escape(text: &[u8], rule: Escape) -> bool {
    use crate::words::{word, word8};
    let del = rule == Escape::JsonAndDel;
    let mut chunks = text.chunks_exact(8);
    // A plain loop and one combined test per word, rather than `any` and a
    // closure per byte class: the same machine code when optimized, and a
    // few calls per word instead of a dozen in debug builds (the test suite
    // and `pullgate generate` in development run those).
    for chunk in &mut chunks {
        if escapes_any(word8(chunk, b'a'), del) {
            return true;
        }
    }
    // The last few bytes are padded with a byte that needs no escaping
    // (most values are shorter than eight bytes).
    escapes_any(word(chunks.remainder(), b'a'), del)
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether any of the eight bytes in `eight` is below 0x20, `"`, `\` or
/// (with `del`) 0x7f.
#[inline(always)]
fn escapes_any(eight: u64, del: bool) -> bool {
    let mut found = below(eight, 0x20) | equal(eight, b'"') | equal(eight, b'\\');
    if del {
        found |= equal(eight, 0x7f);
    }
    found & HIGHS != 0
}

/// High bits set where a byte of `x` is below `n` (n <= 0x80): exact for
/// "is there any such byte", as a borrow only starts at a byte that
/// matches, and bytes with their high bit set are masked by `!x`.
#[inline(always)]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x
}

/// High bits set where a byte of `x` is `b`: a zero byte of `x ^ b`, that
/// is one below 1.
#[inline(always)]
fn equal(x: u64, b: u8) -> u64 {
    below(x ^ (ONES * u64::from(b)), 1)
}

/// A `fmt::Write` that escapes what is written through it: `Debug` values
/// in access lines, formatted straight into the line.
pub struct EscapingWriter<'o, O: TextOut> {
    pub out: &'o mut O,
    pub rule: Escape,
}

impl<O: TextOut> std::fmt::Write for EscapingWriter<'_, O> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        write_escaped(self.out, text, self.rule);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(text: &str, rule: Escape) -> String {
        let mut out = String::new();
        write_string(&mut out, text, rule);
        out
    }

    /// serde_json's string, with DEL escaped as the log's option does.
    fn reference(text: &str, rule: Escape) -> String {
        let json = serde_json::to_string(text).unwrap();
        match rule {
            Escape::Json => json,
            Escape::JsonAndDel => json.replace('\u{7f}', "\\u007f"),
        }
    }

    #[test]
    fn escape_check_finds_every_byte_that_needs_it_at_every_offset() {
        for rule in [Escape::Json, Escape::JsonAndDel] {
            for len in 0..20 {
                for at in 0..len {
                    for b in 0u8..=255 {
                        let mut text = vec![b'a'; len];
                        text[at] = b;
                        let expected = b < 0x20
                            || b == b'"'
                            || b == b'\\'
                            || (b == 0x7f && rule == Escape::JsonAndDel);
                        assert_eq!(
                            needs_escape(&text, rule),
                            expected,
                            "{rule:?} {len} {at} {b}"
                        );
                    }
                }
            }
        }
        assert!(!needs_escape("Ünïcode ÿ\u{7f} €".as_bytes(), Escape::Json));
        assert!(needs_escape(
            "Ünïcode ÿ\u{7f} €".as_bytes(),
            Escape::JsonAndDel
        ));
        assert!(needs_escape("Ünïcode ÿ€\"x".as_bytes(), Escape::Json));
    }

    #[test]
    fn every_ascii_byte_escapes_as_serde_json_does() {
        for b in 0u8..=0x7f {
            let text = char::from(b).to_string();
            for rule in [Escape::Json, Escape::JsonAndDel] {
                assert_eq!(escaped(&text, rule), reference(&text, rule), "{b:#x}");
            }
        }
        assert_eq!(escaped("a\u{7f}b", Escape::JsonAndDel), "\"a\\u007fb\"");
        assert_eq!(escaped("a\u{7f}b", Escape::Json), "\"a\u{7f}b\"");
    }

    #[test]
    fn the_writer_escapes_what_is_formatted_through_it() {
        use std::fmt::Write as _;
        let mut out = Vec::new();
        let mut writer = EscapingWriter {
            out: &mut out,
            rule: Escape::JsonAndDel,
        };
        write!(writer, "{:?}", "a\"b").unwrap();
        assert_eq!(out, br#"\"a\\\"b\""#);
    }

    proptest! {
        #[test]
        fn escapes_as_serde_json_does(
            text in prop_oneof!["[\\x00-\\x7f]{0,64}", "\\PC*", any::<String>()],
        ) {
            for rule in [Escape::Json, Escape::JsonAndDel] {
                prop_assert_eq!(escaped(&text, rule), reference(&text, rule));
                let mut bytes = Vec::new();
                write_string(&mut bytes, &text, rule);
                prop_assert_eq!(String::from_utf8(bytes).unwrap(), reference(&text, rule));
            }
        }
    }
}
