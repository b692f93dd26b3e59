//! RFC 3339 UTC times to the millisecond, `2026-11-22T15:04:05.123Z`: the
//! form of event times and of access-line stamps. Both go through one
//! per-thread cache of the current second's text, so requests within a
//! second only place their milliseconds.

use super::put_decimal;
use std::fmt;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, years 0..=9999.
type SecondText = [u8; 24];
/// Where the milliseconds go in a [`SecondText`].
const MILLIS: std::ops::Range<usize> = 20..23;

/// Writes `ms` (milliseconds since the Unix epoch, UTC) without
/// allocating. Years outside 0..=9999 keep the form the events have always
/// had there: the date, more digits as needed, and midnight.
pub fn write_millis(ms: i64, out: &mut impl fmt::Write) -> fmt::Result {
    thread_local! {
        /// The last second formatted on this thread, and its text.
        static LAST_SECOND: std::cell::Cell<(i64, SecondText)> =
            const { std::cell::Cell::new((i64::MIN, [0; 24])) };
    }
    let second = ms.div_euclid(1000);
    let (cached, mut text) = LAST_SECOND.with(|last| last.get());
    if cached != second {
        match second_text(second) {
            Some(formatted) => {
                text = formatted;
                LAST_SECOND.with(|last| last.set((second, text)));
            }
            None => {
                let (y, m, d) = crate::time::civil_from_days(ms.div_euclid(86_400_000));
                return write!(out, "{y:04}-{m:02}-{d:02}T00:00:00.000Z");
            }
        }
    }
    // 0..=999: the cast cannot lose anything.
    put_decimal(&mut text[MILLIS], ms.rem_euclid(1000) as u64);
    out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// The text of a second since the epoch, milliseconds `000`; None outside
/// years 0..=9999.
fn second_text(second: i64) -> Option<SecondText> {
    let (y, m, d) = crate::time::civil_from_days(second.div_euclid(86_400));
    let year = u64::try_from(y).ok().filter(|y| *y <= 9999)?;
    // 0..86_400: never negative.
    let second_of_day = second.rem_euclid(86_400) as u64;
    let mut text = *b"0000-00-00T00:00:00.000Z";
    put_decimal(&mut text[0..4], year);
    put_decimal(&mut text[5..7], m.into());
    put_decimal(&mut text[8..10], d.into());
    put_decimal(&mut text[11..13], second_of_day / 3600);
    put_decimal(&mut text[14..16], second_of_day % 3600 / 60);
    put_decimal(&mut text[17..19], second_of_day % 60);
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious way: calendar arithmetic and `format!`.
    fn reference(ms: i64) -> String {
        let (y, m, d) = crate::time::civil_from_days(ms.div_euclid(86_400_000));
        let of_day = ms.rem_euclid(86_400_000);
        let (h, min, s, milli) = (
            of_day / 3_600_000,
            of_day / 60_000 % 60,
            of_day / 1000 % 60,
            of_day % 1000,
        );
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
    }

    fn written(ms: i64) -> String {
        let mut out = String::new();
        write_millis(ms, &mut out).unwrap();
        out
    }

    /// Year 0 to year 9999.
    const FIRST: i64 = -62_167_219_200_000;
    const LAST: i64 = 253_402_300_799_999;

    #[test]
    fn edges() {
        for ms in [FIRST, FIRST + 999, -1, 0, 1, 951_782_400_000, LAST] {
            assert_eq!(written(ms), reference(ms), "{ms}");
        }
        assert_eq!(written(LAST + 1), "10000-01-01T00:00:00.000Z");
        assert_eq!(written(FIRST - 1), "-001-12-31T00:00:00.000Z");
    }

    proptest! {
        #[test]
        fn writes_what_calendar_arithmetic_and_format_write(ms in FIRST..=LAST) {
            prop_assert_eq!(written(ms), reference(ms));
        }

        /// Runs of nearby times, as a busy thread formats them: the cached
        /// second never leaks into another.
        #[test]
        fn the_cache_never_leaks_a_second(
            start in FIRST..=LAST - 10_000,
            steps in proptest::collection::vec(-2_500i64..2_500, 1..40),
        ) {
            let mut ms = start;
            for step in steps {
                ms = (ms + step).clamp(FIRST, LAST);
                prop_assert_eq!(written(ms), reference(ms));
            }
        }
    }
}
