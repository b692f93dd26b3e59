//! The report SQL, kept once in `infra/sql/`, and the one small place where
//! the dialects differ.
//!
//! Queries carry `{{placeholders}}`: the shared session CTEs, the events
//! table, the date range and filters, the counting constants, and the few
//! expressions Athena (Trino) and DataFusion spell differently
//! ([`Dialect::expression`]). Everything else is the same text on both.

/// The Athena table DDL (partition projection on `dt`).
pub const EVENTS_TABLE_DDL: &str = include_str!("../../../infra/sql/events_table.sql");
const SESSIONS: &str = include_str!("../../../infra/sql/sessions.sql");
const CLIENTS: &str = include_str!("../../../infra/sql/clients.sql");

/// Requests of one client on one repository that follow each other within
/// this many seconds belong to the same pull (a digest GET after a tag
/// request, the platform manifest after the index).
pub const GAP_SECONDS: u32 = 60;
/// cri-o fetches a tag's manifest twice in one pull (cri-o#5039): a second
/// fetch of the same tag by cri-o within this many seconds is the same pull.
pub const CRIO_REFETCH_SECONDS: u32 = 10;
/// A HEAD by tag repeated within this many seconds, with nothing between,
/// is one request retried after authenticating at the upstream.
pub const RETRY_SECONDS: u32 = 10;
/// The event's own UTC day, `YYYY-MM-DD`: the first ten characters of its
/// RFC 3339 UTC `time`. The same text in every dialect. Reports select and
/// group by it; the `dt` partition only prunes (below).
pub const EVENT_DAY: &str = r#"substr("time", 1, 10)"#;

/// The `dt` partition is the day an event was stored, which need not be its
/// own day: Firehose names a whole buffer (up to 15 minutes of records) by
/// when its oldest record arrived, and `pullgate replay` sends logged
/// events again whenever it is run. So a report over days `from..=to`
/// reads the partitions `from - EARLY_DAYS ..= to + late_days` and keeps
/// the events whose own day is in `from..=to`.
///
/// Before the range, one day: a buffer opened just before midnight is
/// named after that day and also holds the first minutes after it (and a
/// gateway clock a little ahead of Firehose's does the same). Fixed: no
/// buffer spans more than a day. One more partition read, a day's scan on
/// Athena.
pub const EARLY_DAYS: u32 = 1;
/// After the range, by default one day ([`ReportParams::late_days`],
/// `pullgate report --late-days`, the report function's
/// `REPORT_LATE_DAYS`): events reach Firehose after their time (the
/// gateway sends them after the response), so one of 23:59:59.900 can open
/// a buffer after midnight, and a replay the next day lands in the next
/// day's partition. Each further day costs a day's scan. The consequence:
/// an event stored more than `late_days` after its own day is not counted,
/// unless the report is run again with a larger margin.
pub const DEFAULT_LATE_DAYS: u32 = 1;
/// The largest margin accepted: a year of replays. Partition names past
/// year 9999 would no longer compare as dates.
pub const MAX_LATE_DAYS: u32 = 366;

/// A client behind at least this share of all pulls is an outlier...
pub const OUTLIER_SHARE: f64 = 0.1;
/// ...when there are at least this many clients to compare with.
pub const OUTLIER_MIN_CLIENTS: u32 = 10;

/// The SQL dialects the report queries are rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Athena engine v3 (Trino).
    Athena,
    /// The embedded engine (Apache DataFusion).
    DataFusion,
    /// DuckDB, the benchmark's yardstick (bench/report.sh).
    DuckDb,
}

impl Dialect {
    /// The dialect table: every expression the two engines spell
    /// differently, by placeholder name. Keep this the only such place.
    pub fn expression(self, placeholder: &str) -> Option<&'static str> {
        Some(match (placeholder, self) {
            // Seconds since the epoch (double) of the event's RFC 3339 time.
            ("epoch_seconds", Dialect::Athena) => r#"to_unixtime(from_iso8601_timestamp("time"))"#,
            ("epoch_seconds", Dialect::DataFusion) => {
                r#"CAST(CAST(to_timestamp_millis("time") AS BIGINT) AS DOUBLE) / 1000.0"#
            }
            ("epoch_seconds", Dialect::DuckDb) => r#"epoch_ms(CAST("time" AS TIMESTAMP)) / 1000.0"#,
            // The previous tag request's time and tag (the last non-null of a
            // window): Trino puts IGNORE NULLS after the call, DuckDB inside.
            ("lag_tag_time", Dialect::Athena | Dialect::DataFusion) => {
                "LAG(CASE WHEN step = 0 THEN t END) IGNORE NULLS"
            }
            ("lag_tag_time", Dialect::DuckDb) => "LAG(CASE WHEN step = 0 THEN t END IGNORE NULLS)",
            ("lag_tag", Dialect::Athena | Dialect::DataFusion) => {
                "LAG(CASE WHEN step = 0 THEN reference END) IGNORE NULLS"
            }
            ("lag_tag", Dialect::DuckDb) => {
                "LAG(CASE WHEN step = 0 THEN reference END IGNORE NULLS)"
            }
            _ => return None,
        })
    }
}

/// The report queries, one file each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    Overall,
    Series,
    Breakdown,
    TopPullers,
    Orgs,
    OrgDetail,
}

impl Query {
    /// The queries of the overall report.
    pub const OVERALL: [Query; 4] = [
        Query::Overall,
        Query::Series,
        Query::Breakdown,
        Query::TopPullers,
    ];
    /// The queries of the per-organization sections.
    pub const ORGS: [Query; 2] = [Query::Orgs, Query::OrgDetail];
    pub const ALL: [Query; 6] = [
        Query::Overall,
        Query::Series,
        Query::Breakdown,
        Query::TopPullers,
        Query::Orgs,
        Query::OrgDetail,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Query::Overall => "overall",
            Query::Series => "series",
            Query::Breakdown => "breakdown",
            Query::TopPullers => "top_pullers",
            Query::Orgs => "orgs",
            Query::OrgDetail => "org_detail",
        }
    }

    /// The query text as kept in `infra/sql/`, placeholders included.
    pub fn template(self) -> &'static str {
        match self {
            Query::Overall => include_str!("../../../infra/sql/overall.sql"),
            Query::Series => include_str!("../../../infra/sql/series.sql"),
            Query::Breakdown => include_str!("../../../infra/sql/breakdown.sql"),
            Query::TopPullers => include_str!("../../../infra/sql/top_pullers.sql"),
            Query::Orgs => include_str!("../../../infra/sql/orgs.sql"),
            Query::OrgDetail => include_str!("../../../infra/sql/org_detail.sql"),
        }
    }

    /// The query in `dialect`, over `events_table`, for `params`, with the
    /// sessions computed inline (as Athena runs it).
    pub fn render(self, dialect: Dialect, events_table: &str, params: &ReportParams) -> String {
        self.render_over(dialect, events_table, params, Sessions::Inline)
    }

    /// The query with its sessions taken from where `sessions` says.
    pub fn render_over(
        self,
        dialect: Dialect,
        events_table: &str,
        params: &ReportParams,
        sessions: Sessions<'_>,
    ) -> String {
        let shared = match sessions {
            Sessions::Inline => format!("{},\n{CLIENTS}", SESSIONS.trim_end()),
            Sessions::Table(table) => {
                format!("sessions AS (SELECT * FROM {table}),\n{CLIENTS}")
            }
        };
        render(
            &self.template().replace("{{sessions}}", &shared),
            dialect,
            events_table,
            params,
        )
    }
}

/// The table an engine keeps the sessions in ([`Sessions::Table`]).
pub const SESSIONS_TABLE: &str = "report_sessions";

/// Where a query's `sessions` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sessions<'a> {
    /// Computed from the events inside the query (`infra/sql/sessions.sql`).
    Inline,
    /// Read from a table that holds [`sessions_query`]'s result: an engine
    /// that can keep it sessionizes the requests once per report instead of
    /// once per query.
    Table(&'a str),
}

/// Every session of the range, one row each: the result an engine keeps
/// for [`Sessions::Table`].
pub fn sessions_query(dialect: Dialect, events_table: &str, params: &ReportParams) -> String {
    let text = format!("WITH {}\nSELECT * FROM sessions\n", SESSIONS.trim_end());
    render(&text, dialect, events_table, params)
}

/// Fills in every placeholder but the sessions.
fn render(text: &str, dialect: Dialect, events_table: &str, params: &ReportParams) -> String {
    render_placeholders(text, |name| match name {
        "events" => Some(events_table.to_string()),
        "where" => Some(params.where_clause()),
        "org_filter" => Some(match &params.org {
            Some(org) => format!("AND org = {}", literal(org)),
            None => String::new(),
        }),
        "gap_seconds" => Some(GAP_SECONDS.to_string()),
        "crio_refetch_seconds" => Some(CRIO_REFETCH_SECONDS.to_string()),
        "retry_seconds" => Some(RETRY_SECONDS.to_string()),
        "outlier_share" => Some(format!("{OUTLIER_SHARE:?}")),
        "outlier_min_clients" => Some(OUTLIER_MIN_CLIENTS.to_string()),
        "top" => Some(params.top.to_string()),
        "event_day" => Some(EVENT_DAY.to_string()),
        other => dialect.expression(other).map(str::to_string),
    })
}

/// Replaces every `{{name}}`; a name nobody knows is left visible so that the
/// engine's parser (and the tests) reject the query rather than run it wrong.
fn render_placeholders(text: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The DDL with the events bucket filled in.
pub fn events_table_ddl(bucket: &str) -> String {
    EVENTS_TABLE_DDL.replace("{{bucket}}", bucket)
}

/// The event columns `(name, type)` as the DDL declares them (without the
/// `dt` partition key); the embedded engine builds its schema from these.
pub fn event_columns() -> Vec<(&'static str, &'static str)> {
    let Some(start) = EVENTS_TABLE_DDL.find("events (") else {
        return Vec::new();
    };
    let body = &EVENTS_TABLE_DDL[start..];
    let end = body.find("\n)").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(',');
            let rest = line.strip_prefix('`')?;
            let (name, ty) = rest.split_once('`')?;
            Some((name, ty.trim()))
        })
        .collect()
}

/// A SQL string literal: single quotes doubled.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParams {
    /// First UTC day, `YYYY-MM-DD`, inclusive.
    pub from: String,
    /// Last UTC day, `YYYY-MM-DD`, inclusive.
    pub to: String,
    /// Only this repository (`name` or `host/name`).
    pub repo: Option<String>,
    /// Only this organization (per-organization sections).
    pub org: Option<String>,
    /// How many top pullers to list.
    pub top: u32,
    /// How many days after the range the `dt` partitions are read, for
    /// events stored after their own day ([`DEFAULT_LATE_DAYS`]).
    pub late_days: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    #[error("the range ends ({to}) before it starts ({from})")]
    EmptyRange { from: String, to: String },
    #[error("{0} contains control characters")]
    BadFilter(&'static str),
    #[error("{0} late days is more than the {MAX_LATE_DAYS} accepted")]
    LateDays(u32),
}

impl ReportParams {
    /// Checked parameters: real dates in order, filters without control
    /// characters (they end up in SQL literals, quoted).
    pub fn new(
        from: &str,
        to: &str,
        repo: Option<String>,
        org: Option<String>,
    ) -> Result<Self, ParamsError> {
        for date in [from, to] {
            if crate::dates::parse_day(date).is_none() {
                return Err(ParamsError::BadDate(date.to_string()));
            }
        }
        if to < from {
            return Err(ParamsError::EmptyRange {
                from: from.into(),
                to: to.into(),
            });
        }
        if repo.as_deref().is_some_and(has_control) {
            return Err(ParamsError::BadFilter("--repo"));
        }
        if org.as_deref().is_some_and(has_control) {
            return Err(ParamsError::BadFilter("--org"));
        }
        Ok(ReportParams {
            from: from.into(),
            to: to.into(),
            repo,
            org,
            top: 20,
            late_days: DEFAULT_LATE_DAYS,
        })
    }

    /// The same parameters with `late_days` days of partitions read after
    /// the range ([`DEFAULT_LATE_DAYS`]), at most [`MAX_LATE_DAYS`].
    pub fn with_late_days(self, late_days: u32) -> Result<Self, ParamsError> {
        if late_days > MAX_LATE_DAYS {
            return Err(ParamsError::LateDays(late_days));
        }
        Ok(ReportParams { late_days, ..self })
    }

    /// The `dt` partitions to read, `(first, last)`: the range widened by
    /// [`EARLY_DAYS`] before and `late_days` after.
    pub fn partitions(&self) -> (String, String) {
        let widen = |day: &str, by: i64| match crate::dates::parse_day(day) {
            Some(days) => crate::dates::format_day(days + by),
            // Only reachable through the public fields: the range itself is
            // then read unwidened, and the time filter still decides.
            None => day.to_string(),
        };
        let late = self.late_days.min(MAX_LATE_DAYS);
        (
            widen(&self.from, -i64::from(EARLY_DAYS)),
            widen(&self.to, i64::from(late)),
        )
    }

    fn where_clause(&self) -> String {
        let (first, last) = self.partitions();
        let mut clause = format!(
            "dt BETWEEN {} AND {} AND {EVENT_DAY} BETWEEN {} AND {}",
            literal(&first),
            literal(&last),
            literal(&self.from),
            literal(&self.to)
        );
        if let Some(repo) = &self.repo {
            let repo = literal(repo);
            clause.push_str(&format!(
                " AND (name = {repo} OR concat(host, '/', name) = {repo})"
            ));
        }
        clause
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// `YYYY-MM-DD` with a plausible month and day.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    match (digits(0..4), digits(5..7), digits(8..10)) {
        (Some(_), Some(m), Some(d)) => (1..=12).contains(&m) && (1..=31).contains(&d),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
