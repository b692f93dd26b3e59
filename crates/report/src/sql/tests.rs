use super::*;

fn params() -> ReportParams {
    ReportParams::new("2026-01-01", "2026-01-31", Some("o'brien/app".into()), None).unwrap()
}

#[test]
fn every_placeholder_is_filled_in_every_dialect() {
    for dialect in [Dialect::Athena, Dialect::DataFusion, Dialect::DuckDb] {
        for q in Query::ALL {
            let sql = q.render(dialect, "events", &params());
            assert!(
                !sql.contains("{{"),
                "{} left a placeholder: {sql}",
                q.name()
            );
        }
    }
}

#[test]
fn sessions_kept_in_a_table_are_read_from_it() {
    for dialect in [Dialect::Athena, Dialect::DataFusion, Dialect::DuckDb] {
        let kept = sessions_query(dialect, "events", &params());
        assert!(
            !kept.contains("{{") && kept.contains("FROM events"),
            "{kept}"
        );
        for q in Query::ALL {
            let sql = q.render_over(dialect, "events", &params(), Sessions::Table("t"));
            assert!(!sql.contains("{{"), "{}: {sql}", q.name());
            assert!(
                sql.contains("sessions AS (SELECT * FROM t)"),
                "{}",
                q.name()
            );
            // Nothing of the events is read again.
            assert!(!sql.contains("FROM events"), "{}: {sql}", q.name());
        }
    }
}

#[test]
fn the_dialects_differ_only_where_the_table_says() {
    for q in Query::ALL {
        let a = q.render(Dialect::Athena, "events", &params());
        let d = q.render(Dialect::DataFusion, "events", &params());
        let a = a.replace(
            Dialect::Athena.expression("epoch_seconds").unwrap(),
            "EPOCH",
        );
        let d = d.replace(
            Dialect::DataFusion.expression("epoch_seconds").unwrap(),
            "EPOCH",
        );
        assert_eq!(a, d, "{}", q.name());
    }
}

/// The report's range filter, as the queries carry it.
fn range_filter(first: &str, last: &str, from: &str, to: &str) -> String {
    format!(
        "dt BETWEEN '{first}' AND '{last}' AND substr(\"time\", 1, 10) BETWEEN '{from}' AND '{to}'"
    )
}

#[test]
fn the_partitions_are_the_range_widened_and_the_events_are_those_of_its_days() {
    // A day before (a Firehose buffer opened before midnight), the default
    // day of late arrivals after, across a year's end and a month's.
    let filter = range_filter("2025-12-31", "2026-02-01", "2026-01-01", "2026-01-31");
    for dialect in [Dialect::Athena, Dialect::DataFusion, Dialect::DuckDb] {
        let kept = sessions_query(dialect, "events", &params());
        assert!(kept.contains(&filter), "{dialect:?}: {kept}");
        for q in Query::ALL {
            let sql = q.render(dialect, "events", &params());
            assert!(sql.contains(&filter), "{} ({dialect:?}): {sql}", q.name());
        }
    }
    // A leap day, and a margin of a week for a replay days later.
    let params = ReportParams::new("2024-03-01", "2024-03-01", None, None)
        .unwrap()
        .with_late_days(7)
        .unwrap();
    assert_eq!(
        params.partitions(),
        ("2024-02-29".to_string(), "2024-03-08".to_string())
    );
    let sql = Query::Overall.render(Dialect::Athena, "events", &params);
    assert!(
        sql.contains(&range_filter(
            "2024-02-29",
            "2024-03-08",
            "2024-03-01",
            "2024-03-01"
        )),
        "{sql}"
    );
    // No margin after: only the day before.
    let none = params.with_late_days(0).unwrap();
    assert_eq!(
        none.partitions(),
        ("2024-02-29".to_string(), "2024-03-01".to_string())
    );
}

#[test]
fn the_default_margin_is_a_day_and_a_year_at_most() {
    let params = ReportParams::new("2026-01-01", "2026-01-02", None, None).unwrap();
    assert_eq!(params.late_days, DEFAULT_LATE_DAYS);
    assert_eq!(DEFAULT_LATE_DAYS, 1);
    assert!(params.clone().with_late_days(MAX_LATE_DAYS).is_ok());
    assert_eq!(
        params.with_late_days(MAX_LATE_DAYS + 1),
        Err(ParamsError::LateDays(MAX_LATE_DAYS + 1))
    );
}

/// `sql` without its comments.
fn code(sql: &str) -> String {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nothing_but_the_prune_reads_the_partition_column() {
    // Days, weeks, months, active days and a session's day all come from
    // the event's own time: the dt partition is when it was stored.
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let filter = range_filter("2025-12-31", "2026-02-01", "2026-01-01", "2026-01-31");
    for dialect in [Dialect::Athena, Dialect::DataFusion, Dialect::DuckDb] {
        let texts = Query::ALL
            .iter()
            .map(|q| (q.name(), q.render(dialect, "events", &params())))
            .chain([("sessions", sessions_query(dialect, "events", &params()))]);
        for (name, sql) in texts {
            let rest = code(&sql).replace(&filter, "");
            let uses = rest.match_indices("dt").filter(|(i, _)| {
                let before = rest[..*i].chars().next_back();
                let after = rest[i + 2..].chars().next();
                !before.is_some_and(is_word) && !after.is_some_and(is_word)
            });
            assert_eq!(uses.count(), 0, "{name} ({dialect:?}) reads dt: {rest}");
        }
    }
}

#[test]
fn filters_are_quoted() {
    let sql = Query::Overall.render(Dialect::Athena, "events", &params());
    assert!(sql.contains("name = 'o''brien/app'"), "{sql}");
}

#[test]
fn bad_parameters_are_refused() {
    assert!(matches!(
        ReportParams::new("2026-13-01", "2026-01-01", None, None),
        Err(ParamsError::BadDate(_))
    ));
    assert!(matches!(
        ReportParams::new("2026-02-01", "2026-01-01", None, None),
        Err(ParamsError::EmptyRange { .. })
    ));
    assert!(matches!(
        ReportParams::new("2026-01-01", "2026-01-02", None, Some("a\nb".into())),
        Err(ParamsError::BadFilter(_))
    ));
}

#[test]
fn the_ddl_lists_exactly_the_event_fields_of_docs_events_md() {
    let docs = include_str!("../../../../docs/events.md");
    let mut documented = Vec::new();
    for line in docs.lines() {
        let Some(first) = line.strip_prefix("| `") else {
            continue;
        };
        let cell = first.split(" |").next().unwrap_or("");
        for name in cell.split(", ") {
            documented.push(name.trim_matches('`').to_string());
        }
    }
    let declared: Vec<String> = event_columns().iter().map(|(n, _)| n.to_string()).collect();
    let mut a = documented.clone();
    let mut b = declared.clone();
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "docs/events.md fields vs infra/sql/events_table.sql columns"
    );
    assert_eq!(declared.len(), 33);
}

use pullgate_domain::event::{Field, EVENT_FIELDS};

/// The field table of docs/events.md: each field with its documented
/// JSON type (a row names one field, or several with one type each or
/// one type for all), in table order.
fn documented_fields() -> Vec<(String, String)> {
    let docs = include_str!("../../../../docs/events.md");
    let mut fields = Vec::new();
    for line in docs.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let names: Vec<&str> = cells[1].split(", ").map(|n| n.trim_matches('`')).collect();
        let types: Vec<&str> = cells[2].split(", ").collect();
        assert!(types.len() == 1 || types.len() == names.len(), "{line}");
        for (i, name) in names.iter().enumerate() {
            let ty = types.get(i).unwrap_or(&types[0]);
            fields.push((name.to_string(), ty.to_string()));
        }
    }
    fields
}

fn sorted(mut fields: Vec<(String, String)>) -> Vec<(String, String)> {
    fields.sort();
    fields
}

/// The domain's EVENT_FIELDS, with the type `ty` picks.
fn event_fields(ty: impl Fn(&Field) -> &'static str) -> Vec<(String, String)> {
    EVENT_FIELDS
        .iter()
        .map(|f| (f.name.to_string(), ty(f).to_string()))
        .collect()
}

// Names and types, not order: the table keeps the documented order
// (that of the deployed Glue table in template.yaml, which the e2e
// suite holds to the DDL and the docs), events are written in
// EVENT_FIELDS order, and every reader matches JSON keys by name.
#[test]
fn the_ddl_columns_are_the_event_fields_with_their_sql_types() {
    let columns = event_columns()
        .into_iter()
        .map(|(name, ty)| (name.to_string(), ty.to_string()))
        .collect();
    assert_eq!(sorted(columns), sorted(event_fields(|f| f.sql.as_str())));
}

#[test]
fn docs_events_md_documents_the_event_fields_with_their_json_types() {
    let documented = documented_fields();
    assert_eq!(
        sorted(documented.clone()),
        sorted(event_fields(|f| f.json.as_str()))
    );
    let table_order: Vec<&str> = event_columns().into_iter().map(|(name, _)| name).collect();
    let documented_order: Vec<&str> = documented.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(documented_order, table_order);
}
