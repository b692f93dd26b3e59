//! The hot path's text formatting, in one place: numbers in decimal and
//! hex, JSON string escaping, and RFC 3339 times. Every request writes an
//! event and usually an access line with these, so each writes into a
//! buffer the caller owns, allocates nothing and avoids `core::fmt` (whose
//! padding and dispatch cost several times more here, measured).

pub mod json;
pub mod number;
pub mod rfc3339;

pub use json::{write_escaped, write_string, Escape, EscapingWriter};
pub use number::{decimal, hex, put_decimal, put_hex, put_hex_bytes, Digits};

/// Text destinations the writers append to: event lines are bytes, access
/// lines are `String`s. Only whole `&str`s are appended, so a `String`
/// stays UTF-8 without a check.
pub trait TextOut {
    fn push_str(&mut self, text: &str);
}

impl TextOut for Vec<u8> {
    #[inline]
    fn push_str(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
}

impl TextOut for String {
    #[inline]
    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }
}
