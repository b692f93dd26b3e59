//! One self-contained HTML page: inline CSS and inline SVG charts, no script,
//! no font, no image and no link that would reach the network.

use std::fmt::Write;

use super::{percent, thousands};
use crate::model::{OrgSlice, Report, Slice};

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#1d2430;padding:0 16px}\
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}\
h3{font-size:16px;margin:0 0 6px}.muted{color:#667}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\
.card{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:150px}.card b{display:block;font-size:22px}\
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}table{border-collapse:collapse;width:100%;margin:6px 0}\
td,th{padding:3px 8px;border-bottom:1px solid #eef1f4;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
section.org{border:1px solid #dde3ea;border-radius:8px;padding:12px 16px;margin:14px 0}svg{display:block;max-width:100%}\
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}";

const BLUE: &str = "#2f6fde";
const ORANGE: &str = "#e8772e";

pub fn html(report: &Report) -> String {
    let t = &report.totals;
    let mut o = String::with_capacity(64 * 1024);
    let title = match &report.organization {
        Some(org) => format!("pullgate report: {org}"),
        None => "pullgate adoption report".to_string(),
    };
    let _ = write!(o, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>", esc(&title));
    let _ = write!(
        o,
        "<h1>{}</h1><p class=\"muted\">{} to {} (UTC days){}</p>",
        esc(&title),
        esc(&report.from),
        esc(&report.to),
        report
            .repository
            .as_deref()
            .map(|r| format!(", repository {}", esc(r)))
            .unwrap_or_default()
    );
    o.push_str("<div class=\"cards\" id=\"totals\">");
    for (label, value, note) in [
        ("pulls", thousands(t.pulls), "Docker analytics rule"),
        (
            "pulls, usage rule",
            thousands(t.usage_pulls),
            "one per architecture",
        ),
        (
            "update checks",
            thousands(t.update_checks),
            "HEAD by tag only",
        ),
        (
            "data downloads",
            thousands(t.downloads),
            "pulls that fetched layers",
        ),
        (
            "unique pullers",
            thousands(t.unique_pullers),
            "distinct client ids",
        ),
        ("organizations", thousands(t.organizations), "identified"),
        ("CI share", percent(t.ci_share), "of pulls"),
    ] {
        let _ = write!(o, "<div class=\"card\"><span class=\"muted\">{label}</span><b>{value}</b><span class=\"muted\">{note}</span></div>");
    }
    o.push_str("</div>");

    o.push_str("<h2>Pulls and unique pullers over time</h2>");
    let days: Vec<(String, i64, i64)> = report
        .series_of("day")
        .map(|p| (p.period.clone(), p.pulls, p.unique_pullers))
        .collect();
    o.push_str(&line_chart("chart-pulls-over-time", &days));
    let weeks: Vec<(String, i64, i64)> = report
        .series_of("week")
        .map(|p| (p.period.clone(), p.pulls, p.unique_pullers))
        .collect();
    if weeks.len() > 1 {
        o.push_str("<h3>By week</h3>");
        o.push_str(&line_chart("chart-pulls-by-week", &weeks));
    }

    o.push_str("<h2>Runtime and platform mix</h2><div class=\"grid\">");
    let _ = write!(
        o,
        "<div><h3>Runtimes</h3>{}</div>",
        bar_chart("chart-runtimes", &slices(report.breakdown.get("runtime")))
    );
    let _ = write!(
        o,
        "<div><h3>Platforms (OS/arch)</h3>{}</div>",
        bar_chart("chart-platforms", &slices(report.breakdown.get("platform")))
    );
    let _ = write!(
        o,
        "<div><h3>Countries</h3>{}</div>",
        bar_chart("chart-countries", &slices(report.breakdown.get("country")))
    );
    let _ = write!(
        o,
        "<div><h3>Organization kinds</h3>{}</div>",
        bar_chart("chart-org-kinds", &slices(report.breakdown.get("org_kind")))
    );
    o.push_str("</div>");

    o.push_str("<h2>Top organizations</h2>");
    let orgs: Vec<(String, i64)> = report
        .organizations
        .iter()
        .take(15)
        .map(|g| (g.name.clone(), g.pulls))
        .collect();
    o.push_str(&bar_chart("chart-top-orgs", &orgs));

    o.push_str("<h2>Repositories and tags</h2><div class=\"grid\">");
    for (dimension, title) in [("repository", "Repositories"), ("tag", "Tags")] {
        let _ = write!(
            o,
            "<div><h3>{title}</h3>{}</div>",
            slice_table(
                report
                    .breakdown
                    .get(dimension)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
            )
        );
    }
    o.push_str("</div>");

    if !report.top_pullers.is_empty() {
        o.push_str("<h2>Top pullers</h2><table id=\"top-pullers\"><tr><th>client</th><th>organization</th><th>runtime</th><th>country</th><th class=\"n\">pulls</th><th class=\"n\">checks</th><th class=\"n\">days</th><th>behaviour</th></tr>");
        for p in &report.top_pullers {
            let _ = write!(o, "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}{}</td></tr>", esc(&p.client), esc(&p.org), esc(&p.runtime), esc(&p.country), thousands(p.pulls), thousands(p.update_checks), p.active_days, esc(&p.behaviour), if p.outlier { ", <b>outlier</b>" } else { "" });
        }
        o.push_str("</table>");
    }

    let _ = write!(o, "<h2>Organizations ({})</h2>", report.organizations.len());
    for (i, g) in report.organizations.iter().enumerate() {
        let _ = write!(
            o,
            "<section class=\"org\" id=\"org-{i}\" data-org=\"{}\"><h3>{}</h3>",
            esc(&g.name),
            esc(&g.name)
        );
        let _ = write!(o, "<p class=\"muted\">{} · confidence {:.2} · {} · first seen {} · last seen {} · {} active days</p>", esc(&g.kind), g.confidence, esc(&g.country), esc(&g.first_seen), esc(&g.last_seen), g.active_days);
        let _ = write!(o, "<div class=\"cards\"><div class=\"card\"><span class=\"muted\">pulls</span><b>{}</b></div><div class=\"card\"><span class=\"muted\">usage rule</span><b>{}</b></div><div class=\"card\"><span class=\"muted\">unique pullers</span><b>{}</b></div><div class=\"card\"><span class=\"muted\">update checks</span><b>{}</b></div><div class=\"card\"><span class=\"muted\">repositories / tags</span><b>{} / {}</b></div><div class=\"card\"><span class=\"muted\">CI share</span><b>{}</b></div><div class=\"card\"><span class=\"muted\">behaviour</span><b style=\"font-size:14px\">{}</b></div></div>",
            thousands(g.pulls), thousands(g.usage_pulls), thousands(g.unique_pullers), thousands(g.update_checks), g.repository_count, g.tag_count, percent(g.ci_share), esc(&g.behaviour_summary()));
        let weeks: Vec<(String, i64, i64)> = g
            .detail
            .get("week")
            .map(|w| {
                let mut w: Vec<&OrgSlice> = w.iter().collect();
                w.sort_by(|a, b| a.value.cmp(&b.value));
                w.iter()
                    .map(|s| (s.value.clone(), s.pulls, s.unique_pullers))
                    .collect()
            })
            .unwrap_or_default();
        o.push_str("<div class=\"grid\"><div><b>Weekly trend</b>");
        o.push_str(&line_chart(&format!("chart-org-{i}-trend"), &weeks));
        o.push_str("</div><div>");
        for (dimension, title) in [
            ("repository", "Repositories"),
            ("tag", "Tags"),
            ("runtime", "Runtimes"),
            ("platform", "Platforms"),
            ("ci", "CI"),
        ] {
            let values: Vec<String> = g
                .detail
                .get(dimension)
                .map(|v| {
                    v.iter()
                        .take(8)
                        .map(|s| format!("{} ({})", esc(&s.value), thousands(s.pulls)))
                        .collect()
                })
                .unwrap_or_default();
            let _ = write!(o, "<div><b>{title}:</b> {}</div>", values.join(", "));
        }
        o.push_str("</div></div></section>");
    }
    o.push_str("<p class=\"muted\">Pulls follow Docker's publisher-analytics rule (a tag request and the digest GETs that follow are one pull; a pull by digest is one pull; HEAD by tag alone is an update check); the usage rule counts one pull per architecture. Generated by pullgate.</p></body></html>\n");
    o
}

fn slices(s: Option<&Vec<Slice>>) -> Vec<(String, i64)> {
    s.map(|v| {
        v.iter()
            .take(10)
            .map(|s| (s.value.clone(), s.pulls))
            .collect()
    })
    .unwrap_or_default()
}

fn slice_table(slices: &[Slice]) -> String {
    let mut o = String::from("<table><tr><th>value</th><th class=\"n\">pulls</th><th class=\"n\">usage</th><th class=\"n\">checks</th><th class=\"n\">pullers</th></tr>");
    for s in slices.iter().take(15) {
        let _ = write!(o, "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>", esc(&s.value), thousands(s.pulls), thousands(s.usage_pulls), thousands(s.update_checks), thousands(s.unique_pullers));
    }
    o.push_str("</table>");
    o
}

/// Two series (pulls, unique pullers) over labelled points, as SVG lines.
fn line_chart(id: &str, points: &[(String, i64, i64)]) -> String {
    let (w, h, left, bottom, top) = (1100.0_f64, 260.0_f64, 60.0_f64, 36.0_f64, 16.0_f64);
    let mut o = format!("<svg id=\"{id}\" class=\"chart line\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"pulls and unique pullers\">");
    let max = points
        .iter()
        .map(|p| p.1.max(p.2))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = w - left - 16.0;
    let plot_h = h - bottom - top;
    let x = |i: usize| {
        left + if points.len() > 1 {
            plot_w * i as f64 / (points.len() - 1) as f64
        } else {
            plot_w / 2.0
        }
    };
    let y = |v: i64| top + plot_h - plot_h * v as f64 / max;
    for k in 0..=4 {
        let v = (max * k as f64 / 4.0).round() as i64;
        let _ = write!(o, "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eef1f4\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#667\">{}</text>", w - 16.0, y(v), y(v), left - 6.0, y(v) + 4.0, thousands(v));
    }
    for (series, color) in [(1, BLUE), (2, ORANGE)] {
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(if series == 1 { p.1 } else { p.2 })))
            .collect();
        if points.len() == 1 {
            let v = if series == 1 {
                points[0].1
            } else {
                points[0].2
            };
            let _ = write!(
                o,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"/>",
                x(0),
                y(v)
            );
        } else {
            let _ = write!(
                o,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
        }
    }
    let step = (points.len() / 10).max(1);
    for (i, p) in points.iter().enumerate().step_by(step) {
        let _ = write!(o, "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#667\">{}</text>", x(i), h - 14.0, esc(&p.0));
    }
    o.push_str("</svg>");
    let _ = write!(o, "<div class=\"legend\"><span><i class=\"sw\" style=\"background:{BLUE}\"></i>pulls</span><span><i class=\"sw\" style=\"background:{ORANGE}\"></i>unique pullers</span></div>");
    if points.is_empty() {
        o.push_str("<p class=\"muted\">no data in this range</p>");
    }
    o
}

/// Horizontal bars, one per labelled value.
fn bar_chart(id: &str, bars: &[(String, i64)]) -> String {
    let row = 22.0_f64;
    let (w, label_w) = (540.0_f64, 190.0_f64);
    let h = (bars.len().max(1) as f64) * row + 8.0;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let mut o = format!("<svg id=\"{id}\" class=\"chart bar\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\">");
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let bw = (w - label_w - 70.0) * *v as f64 / max;
        let label: String = label.chars().take(28).collect();
        let _ = write!(o, "<text x=\"{}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1d2430\">{}</text><rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{}\" rx=\"2\" fill=\"{BLUE}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#667\">{}</text>",
            label_w - 6.0, y + 14.0, esc(&label), y + 2.0, row - 6.0, label_w + bw + 6.0, y + 14.0, thousands(*v));
    }
    if bars.is_empty() {
        let _ = write!(
            o,
            "<text x=\"10\" y=\"18\" font-size=\"12\" fill=\"#667\">no data</text>"
        );
    }
    o.push_str("</svg>");
    o
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}
