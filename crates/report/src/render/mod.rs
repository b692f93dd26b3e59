//! Renderings of a [`Report`]: a terminal table, JSON, CSV and one
//! self-contained HTML page.

mod csv;
mod html;
mod text;

pub use csv::csv;
pub use html::html;
pub use text::text;

use crate::model::Report;

/// The report as pretty JSON (the structure of [`Report`]).
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// 1234567 → "1,234,567".
pub(crate) fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub(crate) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}
