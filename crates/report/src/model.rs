//! The report: what the queries' tables mean, as one serializable value.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{EngineError, QueryEngine};
use crate::sql::{sessions_query, Query, ReportParams, Sessions, SESSIONS_TABLE};
use crate::table::{Record, Table};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    /// Events stored up to this many days after their own day were read
    /// ([`ReportParams::late_days`]): a later replay is not in this report.
    pub late_days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    pub totals: Totals,
    pub series: Vec<Period>,
    /// dimension (repository, tag, runtime, runtime_version, platform,
    /// country, org_kind, ci) → slices, most pulls first.
    pub breakdown: BTreeMap<String, Vec<Slice>>,
    pub top_pullers: Vec<Puller>,
    pub organizations: Vec<Organization>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Pulls under Docker's analytics rule (tag request + the digest GETs
    /// that follow = one pull; a pull by digest = one pull).
    pub pulls: i64,
    /// Pulls under Docker's usage rule (one per architecture pulled).
    pub usage_pulls: i64,
    pub pulls_by_tag: i64,
    pub pulls_by_digest: i64,
    /// HEAD by tag with nothing fetched: a deployment checking for updates.
    pub update_checks: i64,
    /// Pulls that downloaded at least one blob (new layers).
    pub downloads: i64,
    /// Distinct client ids that pulled.
    pub unique_pullers: i64,
    pub unique_clients: i64,
    pub organizations: i64,
    pub ci_pulls: i64,
    pub ci_share: f64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    pub granularity: String,
    pub period: String,
    pub pulls: i64,
    pub usage_pulls: i64,
    pub update_checks: i64,
    pub downloads: i64,
    pub unique_pullers: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slice {
    pub value: String,
    pub pulls: i64,
    pub usage_pulls: i64,
    pub update_checks: i64,
    pub downloads: i64,
    pub unique_pullers: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Puller {
    /// The first 12 hex digits of the client id (keyed hash, rotated).
    pub client: String,
    pub org: String,
    pub runtime: String,
    pub country: String,
    pub pulls: i64,
    pub update_checks: i64,
    pub active_days: i64,
    pub behaviour: String,
    pub outlier: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Organization {
    pub name: String,
    pub kind: String,
    pub confidence: f64,
    pub country: String,
    pub pulls: i64,
    pub usage_pulls: i64,
    pub unique_pullers: i64,
    pub update_checks: i64,
    pub downloads: i64,
    pub repository_count: i64,
    pub tag_count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub active_days: i64,
    pub ci_pulls: i64,
    pub ci_share: f64,
    /// Clients per behaviour: ci, polling, development, occasional.
    pub behaviour: BTreeMap<String, i64>,
    pub outlier_clients: i64,
    /// repository, tag, week, runtime, platform, ci → slices.
    pub detail: BTreeMap<String, Vec<OrgSlice>>,
}

impl Organization {
    /// The behaviours seen, most clients first: "polling, ci".
    pub fn behaviour_summary(&self) -> String {
        let mut seen: Vec<(&String, &i64)> =
            self.behaviour.iter().filter(|(_, n)| **n > 0).collect();
        seen.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut words: Vec<String> = seen.iter().map(|(k, n)| format!("{k} ({n})")).collect();
        if self.outlier_clients > 0 {
            words.push(format!("outliers ({})", self.outlier_clients));
        }
        words.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgSlice {
    pub value: String,
    pub pulls: i64,
    pub update_checks: i64,
    pub unique_pullers: i64,
}

/// Runs every report query on `engine` and assembles the report.
/// `progress(done, total, query)` is called before each query.
pub async fn build_report<E: QueryEngine>(
    engine: &E,
    params: &ReportParams,
    events_table: &str,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Report, EngineError> {
    build_sections(engine, params, events_table, &Query::ALL, progress).await
}

/// Like [`build_report`], running only `queries` (the sections of the others
/// stay empty): the overall part or the per-organization part alone.
pub async fn build_sections<E: QueryEngine>(
    engine: &E,
    params: &ReportParams,
    events_table: &str,
    queries: &[Query],
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Report, EngineError> {
    // Sessionizing the requests is most of every query's work: where the
    // engine can keep the sessions, do it once and let the queries read them.
    let steps = queries.len() + 1;
    progress(0, steps, "sessions");
    let dialect = engine.dialect();
    let sessions = if engine
        .keep(
            SESSIONS_TABLE,
            &sessions_query(dialect, events_table, params),
        )
        .await?
    {
        Sessions::Table(SESSIONS_TABLE)
    } else {
        Sessions::Inline
    };
    let mut tables = BTreeMap::new();
    for (i, q) in queries.iter().enumerate() {
        progress(i + 1, steps, q.name());
        let sql = q.render_over(dialect, events_table, params, sessions);
        tables.insert(q.name(), engine.run(q.name(), &sql).await?);
    }
    progress(steps, steps, "done");
    Ok(assemble(params, &tables))
}

/// The report from the queries' tables (by query name).
pub fn assemble(params: &ReportParams, tables: &BTreeMap<&str, Table>) -> Report {
    let empty = Table::default();
    let table = |name: &str| tables.get(name).unwrap_or(&empty);
    let totals = table("overall")
        .records()
        .next()
        .map(|r| totals(&r))
        .unwrap_or_default();
    let series = table("series")
        .records()
        .map(|r| Period {
            granularity: r.text("granularity"),
            period: r.text("period"),
            pulls: r.int("pulls"),
            usage_pulls: r.int("usage_pulls"),
            update_checks: r.int("update_checks"),
            downloads: r.int("downloads"),
            unique_pullers: r.int("unique_pullers"),
        })
        .collect();
    let mut breakdown: BTreeMap<String, Vec<Slice>> = BTreeMap::new();
    for r in table("breakdown").records() {
        breakdown
            .entry(r.text("dimension"))
            .or_default()
            .push(Slice {
                value: r.text("value"),
                pulls: r.int("pulls"),
                usage_pulls: r.int("usage_pulls"),
                update_checks: r.int("update_checks"),
                downloads: r.int("downloads"),
                unique_pullers: r.int("unique_pullers"),
            });
    }
    let top_pullers = table("top_pullers")
        .records()
        .map(|r| Puller {
            client: r.text("client"),
            org: r.text("org"),
            runtime: r.text("runtime"),
            country: r.text("country"),
            pulls: r.int("pulls"),
            update_checks: r.int("update_checks"),
            active_days: r.int("active_days"),
            behaviour: r.text("behaviour"),
            outlier: r.int("outlier") > 0,
        })
        .collect();
    let mut detail: BTreeMap<String, BTreeMap<String, Vec<OrgSlice>>> = BTreeMap::new();
    for r in table("org_detail").records() {
        detail
            .entry(r.text("org"))
            .or_default()
            .entry(r.text("dimension"))
            .or_default()
            .push(OrgSlice {
                value: r.text("value"),
                pulls: r.int("pulls"),
                update_checks: r.int("update_checks"),
                unique_pullers: r.int("unique_pullers"),
            });
    }
    let organizations = table("orgs")
        .records()
        .map(|r| {
            let name = r.text("org");
            let pulls = r.int("pulls");
            let ci_pulls = r.int("ci_pulls");
            Organization {
                kind: r.text("kind"),
                confidence: r.float("confidence"),
                country: r.text("country"),
                pulls,
                usage_pulls: r.int("usage_pulls"),
                unique_pullers: r.int("unique_pullers"),
                update_checks: r.int("update_checks"),
                downloads: r.int("downloads"),
                repository_count: r.int("repositories"),
                tag_count: r.int("tags"),
                first_seen: r.text("first_seen"),
                last_seen: r.text("last_seen"),
                active_days: r.int("active_days"),
                ci_pulls,
                ci_share: share(ci_pulls, pulls),
                behaviour: ["ci", "polling", "development", "occasional"]
                    .iter()
                    .map(|b| (b.to_string(), r.int(&format!("{b}_clients"))))
                    .collect(),
                outlier_clients: r.int("outlier_clients"),
                detail: detail.remove(&name).unwrap_or_default(),
                name,
            }
        })
        .collect();
    Report {
        from: params.from.clone(),
        to: params.to.clone(),
        late_days: params.late_days,
        repository: params.repo.clone(),
        organization: params.org.clone(),
        totals,
        series,
        breakdown,
        top_pullers,
        organizations,
    }
}

fn totals(r: &Record<'_>) -> Totals {
    let pulls = r.int("pulls");
    let ci_pulls = r.int("ci_pulls");
    Totals {
        pulls,
        usage_pulls: r.int("usage_pulls"),
        pulls_by_tag: r.int("pulls_by_tag"),
        pulls_by_digest: r.int("pulls_by_digest"),
        update_checks: r.int("update_checks"),
        downloads: r.int("downloads"),
        unique_pullers: r.int("unique_pullers"),
        unique_clients: r.int("unique_clients"),
        organizations: r.int("organizations"),
        ci_pulls,
        ci_share: share(ci_pulls, pulls),
        first_seen: r.text("first_seen"),
        last_seen: r.text("last_seen"),
    }
}

fn share(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 1000.0).round() / 1000.0
    }
}

impl Report {
    /// The series of one granularity (`day`, `week`, `month`).
    pub fn series_of<'a>(&'a self, granularity: &'a str) -> impl Iterator<Item = &'a Period> + 'a {
        self.series
            .iter()
            .filter(move |p| p.granularity == granularity)
    }

    /// True when the range held no pull and no update check.
    pub fn is_empty(&self) -> bool {
        self.totals.pulls == 0 && self.totals.update_checks == 0 && self.organizations.is_empty()
    }
}
