//! The terminal table `pullgate report` prints by default.

use std::fmt::Write;

use super::{percent, thousands};
use crate::model::Report;

const BREAKDOWNS: [(&str, &str); 8] = [
    ("repository", "Repositories"),
    ("tag", "Tags"),
    ("runtime_version", "Runtimes"),
    ("platform", "Platforms (OS/arch)"),
    ("country", "Countries"),
    ("org_kind", "Organization kinds"),
    ("ci", "CI providers"),
    ("runtime", "Runtime families"),
];

pub fn text(report: &Report) -> String {
    let mut o = String::new();
    let t = &report.totals;
    let _ = writeln!(o, "pullgate report  {} .. {}", report.from, report.to);
    if let Some(repo) = &report.repository {
        let _ = writeln!(o, "repository       {repo}");
    }
    if let Some(org) = &report.organization {
        let _ = writeln!(o, "organization     {org}");
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "  pulls (analytics rule) {:>12}   by tag {}, by digest {}",
        thousands(t.pulls),
        thousands(t.pulls_by_tag),
        thousands(t.pulls_by_digest)
    );
    let _ = writeln!(
        o,
        "  pulls (usage rule)     {:>12}   one per architecture pulled",
        thousands(t.usage_pulls)
    );
    let _ = writeln!(
        o,
        "  update checks          {:>12}",
        thousands(t.update_checks)
    );
    let _ = writeln!(
        o,
        "  data downloads         {:>12}   pulls that fetched layers",
        thousands(t.downloads)
    );
    let _ = writeln!(
        o,
        "  unique pullers         {:>12}   {} organizations, CI {}",
        thousands(t.unique_pullers),
        thousands(t.organizations),
        percent(t.ci_share)
    );
    if !t.first_seen.is_empty() {
        let _ = writeln!(
            o,
            "  first / last seen      {} / {}",
            t.first_seen, t.last_seen
        );
    }
    for granularity in ["week", "month"] {
        let rows: Vec<_> = report.series_of(granularity).collect();
        if rows.len() < 2 && granularity == "month" {
            continue;
        }
        let _ = writeln!(o, "\nBy {granularity}");
        let _ = writeln!(
            o,
            "  {:<12} {:>10} {:>10} {:>10} {:>10}",
            granularity, "pulls", "usage", "checks", "pullers"
        );
        for p in rows {
            let _ = writeln!(
                o,
                "  {:<12} {:>10} {:>10} {:>10} {:>10}",
                p.period,
                thousands(p.pulls),
                thousands(p.usage_pulls),
                thousands(p.update_checks),
                thousands(p.unique_pullers)
            );
        }
    }
    for (dimension, title) in BREAKDOWNS {
        let Some(slices) = report.breakdown.get(dimension) else {
            continue;
        };
        let _ = writeln!(o, "\n{title}");
        for s in slices.iter().take(10) {
            let _ = writeln!(
                o,
                "  {:<44} {:>10} pulls {:>8} checks {:>7} pullers",
                clip(&s.value, 44),
                thousands(s.pulls),
                thousands(s.update_checks),
                thousands(s.unique_pullers)
            );
        }
        if slices.len() > 10 {
            let _ = writeln!(o, "  ... {} more", slices.len() - 10);
        }
    }
    if !report.top_pullers.is_empty() {
        let _ = writeln!(o, "\nTop pullers");
        let _ = writeln!(
            o,
            "  {:<12} {:<24} {:<12} {:<3} {:>8} {:>8} {:>5}  behaviour",
            "client", "organization", "runtime", "cc", "pulls", "checks", "days"
        );
        for p in &report.top_pullers {
            let flag = if p.outlier { ", outlier" } else { "" };
            let _ = writeln!(
                o,
                "  {:<12} {:<24} {:<12} {:<3} {:>8} {:>8} {:>5}  {}{}",
                p.client,
                clip(&p.org, 24),
                clip(&p.runtime, 12),
                p.country,
                thousands(p.pulls),
                thousands(p.update_checks),
                p.active_days,
                p.behaviour,
                flag
            );
        }
    }
    if !report.organizations.is_empty() {
        let _ = writeln!(o, "\nOrganizations");
        let _ = writeln!(o, "  {:<28} {:<10} {:>4} {:<3} {:>8} {:>7} {:>7} {:>5} {:>5} {:>4} {:>6}  {:<10} {:<10} behaviour", "organization", "kind", "conf", "cc", "pulls", "pullers", "checks", "repos", "tags", "days", "CI", "first", "last");
        for g in &report.organizations {
            let _ = writeln!(o, "  {:<28} {:<10} {:>4.2} {:<3} {:>8} {:>7} {:>7} {:>5} {:>5} {:>4} {:>6}  {:<10} {:<10} {}", clip(&g.name, 28), g.kind, g.confidence, g.country, thousands(g.pulls), thousands(g.unique_pullers), thousands(g.update_checks), g.repository_count, g.tag_count, g.active_days, percent(g.ci_share), day(&g.first_seen), day(&g.last_seen), g.behaviour_summary());
        }
    }
    if report.organization.is_some() {
        for g in &report.organizations {
            let _ = writeln!(o, "\n{} ({})", g.name, g.kind);
            for (dimension, slices) in &g.detail {
                let values: Vec<String> = slices
                    .iter()
                    .take(8)
                    .map(|s| format!("{} {}", s.value, thousands(s.pulls)))
                    .collect();
                let _ = writeln!(o, "  {:<11} {}", dimension, values.join(" · "));
            }
        }
    }
    o
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(width.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

fn day(time: &str) -> &str {
    time.get(..10).unwrap_or(time)
}
