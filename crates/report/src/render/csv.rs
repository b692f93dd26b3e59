//! CSV: one row per (section, group, value) with the same count columns, so
//! that one file loads into a spreadsheet and filters by section.

use std::fmt::Write;

use crate::model::Report;

pub fn csv(report: &Report) -> String {
    let mut o = String::from(
        "section,group,value,pulls,usage_pulls,update_checks,downloads,unique_pullers\n",
    );
    let t = &report.totals;
    row(
        &mut o,
        "totals",
        "",
        &format!("{}..{}", report.from, report.to),
        [
            t.pulls,
            t.usage_pulls,
            t.update_checks,
            t.downloads,
            t.unique_pullers,
        ],
    );
    for p in &report.series {
        row(
            &mut o,
            "series",
            &p.granularity,
            &p.period,
            [
                p.pulls,
                p.usage_pulls,
                p.update_checks,
                p.downloads,
                p.unique_pullers,
            ],
        );
    }
    for (dimension, slices) in &report.breakdown {
        for s in slices {
            row(
                &mut o,
                "breakdown",
                dimension,
                &s.value,
                [
                    s.pulls,
                    s.usage_pulls,
                    s.update_checks,
                    s.downloads,
                    s.unique_pullers,
                ],
            );
        }
    }
    for p in &report.top_pullers {
        row(
            &mut o,
            "top_puller",
            &p.client,
            &p.org,
            [p.pulls, 0, p.update_checks, 0, 1],
        );
    }
    for g in &report.organizations {
        row(
            &mut o,
            "organization",
            &g.name,
            &g.kind,
            [
                g.pulls,
                g.usage_pulls,
                g.update_checks,
                g.downloads,
                g.unique_pullers,
            ],
        );
        for (dimension, slices) in &g.detail {
            for s in slices {
                row(
                    &mut o,
                    &format!("organization:{dimension}"),
                    &g.name,
                    &s.value,
                    [s.pulls, 0, s.update_checks, 0, s.unique_pullers],
                );
            }
        }
    }
    o
}

fn row(o: &mut String, section: &str, group: &str, value: &str, counts: [i64; 5]) {
    let _ = write!(o, "{},{},{}", field(section), field(group), field(value));
    for c in counts {
        let _ = write!(o, ",{c}");
    }
    o.push('\n');
}

/// RFC 4180 quoting; a leading =, +, - or @ is prefixed with ' so that a
/// spreadsheet never runs a value (tags and org names come from outside).
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
