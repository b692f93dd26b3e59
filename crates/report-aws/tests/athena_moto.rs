//! The Athena path against moto_server (the real AWS SDK, a local endpoint):
//! the report built on the embedded engine over hand-built events is the
//! report the Athena adapter assembles when Athena answers with the same
//! rows (injected through moto's own results API, since moto runs no SQL);
//! the SQL text Athena receives is the Athena rendering of the same queries
//! and parses as standard SQL in the PostgreSQL dialect (the closest sqlparser-rs
//! has to Trino's); the reports land in S3 under
//! reports/<day>/ and orgs/.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_athena::config::{Credentials, Region};
use pullgate_embedded_engine::{EmbeddedEngine, EVENTS_TABLE};
use pullgate_report::sql::{events_table_ddl, Query};
use pullgate_report::{
    build_report, Dialect, EngineError, QueryEngine, ReportParams, Table, Value,
};
use pullgate_report_aws::athena::{AthenaEngine, Polling};
use pullgate_report_aws::s3_reports::S3Reports;

struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let binary = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server")
        });
    assert!(
        binary.exists(),
        "moto_server not found at {} (run tests/install-deps.sh)",
        binary.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start moto_server");
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(format!("http://127.0.0.1:{}", moto.port))
        .load()
        .await
}

/// moto's results queue: each started query takes the next entry.
fn inject(moto: &Moto, tables: &[Table]) {
    let results: Vec<serde_json::Value> = tables
        .iter()
        .map(|t| {
            let types: Vec<&str> = (0..t.columns.len())
                .map(|c| {
                    let cells = t.rows.iter().map(|r| &r[c]);
                    if cells.clone().any(|v| matches!(v, Value::Float(_))) {
                        "double"
                    } else if cells.clone().any(|v| matches!(v, Value::Int(_))) && cells.clone().all(|v| matches!(v, Value::Int(_) | Value::Null)) {
                        "bigint"
                    } else {
                        "varchar"
                    }
                })
                .collect();
            let header = serde_json::json!({"Data": t.columns.iter().map(|c| serde_json::json!({"VarCharValue": c})).collect::<Vec<_>>()});
            let mut rows = vec![header];
            for r in &t.rows {
                rows.push(serde_json::json!({"Data": r.iter().map(|v| match v {
                    Value::Null => serde_json::json!({}),
                    v => serde_json::json!({"VarCharValue": v.as_text()}),
                }).collect::<Vec<_>>()}));
            }
            let info: Vec<serde_json::Value> = t
                .columns
                .iter()
                .zip(&types)
                .map(|(n, ty)| serde_json::json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": n, "Label": n, "Type": ty, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false}))
                .collect();
            serde_json::json!({"rows": rows, "column_info": info})
        })
        .collect();
    let body = serde_json::json!({"account_id": "123456789012", "region": "us-east-1", "results": results}).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", moto.port)).unwrap();
    write!(
        stream,
        "POST /moto-api/static/athena/query-results HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        moto.port,
        body.len(),
        body
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201") || answer.starts_with("HTTP/1.0 201"),
        "moto refused the results: {answer}"
    );
}

/// Keeps every table the wrapped engine returned, in order.
struct Recording<E> {
    inner: E,
    tables: RefCell<Vec<Table>>,
}

impl<E: QueryEngine> QueryEngine for Recording<E> {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    async fn run(&self, name: &str, sql: &str) -> Result<Table, EngineError> {
        let table = self.inner.run(name, sql).await?;
        self.tables.borrow_mut().push(table.clone());
        Ok(table)
    }
}

/// The event files, in a directory removed when the test ends (also when it
/// fails).
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pullgate-athena-moto-")
        .tempdir()
        .unwrap();
    let part = dir.path().join("events/dt=2026-03-02");
    std::fs::create_dir_all(&part).unwrap();
    let mut lines = Vec::new();
    let mut n = 0;
    let mut add = |client: &str,
                   org: Option<&str>,
                   runtime: &str,
                   ci: Option<&str>,
                   secs: u32,
                   method: &str,
                   kind: &str,
                   reference: &str| {
        n += 1;
        let mut e = serde_json::json!({
            "v": 1, "time": format!("2026-03-02T{:02}:{:02}:{:02}.{:03}Z", secs / 3600, secs / 60 % 60, secs % 60, n),
            "request_id": format!("r{n:05}"), "host": "images.acme.dev", "name": "app", "method": method,
            "kind": kind, "reference": reference, "status": 200, "client_id": client, "country": "FR",
            "runtime": runtime, "runtime_version": "1.0", "os": "linux", "arch": "amd64", "ua": runtime, "duration_us": 5
        });
        if let Some(org) = org {
            e["org"] = org.into();
            e["org_kind"] = "business".into();
            e["org_confidence"] = 0.9.into();
        }
        if let Some(ci) = ci {
            e["ci"] = ci.into();
        }
        lines.push(e.to_string());
    };
    let d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    add(
        "c1",
        Some("Acme Corp"),
        "docker",
        None,
        10,
        "HEAD",
        "manifest",
        "1.0",
    );
    add(
        "c1",
        Some("Acme Corp"),
        "docker",
        None,
        10,
        "GET",
        "manifest",
        d1,
    );
    add(
        "c1",
        Some("Acme Corp"),
        "docker",
        None,
        11,
        "GET",
        "blob",
        d2,
    );
    add(
        "c1",
        Some("Acme Corp"),
        "docker",
        None,
        3600,
        "HEAD",
        "manifest",
        "1.0",
    );
    add(
        "c2",
        Some("Globex"),
        "podman",
        Some("github-actions"),
        20,
        "GET",
        "manifest",
        "latest",
    );
    add(
        "c2",
        Some("Globex"),
        "podman",
        Some("github-actions"),
        21,
        "GET",
        "manifest",
        d2,
    );
    add("c3", None, "containerd", None, 30, "GET", "manifest", d1);
    let file = std::fs::File::create(part.join("pullgate-1-1-0.json.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for l in lines {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();
    dir
}

fn parse_as_trino(sql: &str) -> Result<(), String> {
    // sqlparser-rs has no Trino dialect. PostgreSQL's is the closest: Trino
    // follows the standard the same way (double-quoted identifiers, single-
    // quoted strings, CAST, GROUPING SETS, window frames, LIMIT), and unlike
    // the generic and ANSI dialects it refuses MySQL/Hive backtick
    // identifiers (ANSI also lacks GROUPING SETS in sqlparser).
    sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn athena_path_matches_the_embedded_engine_and_stores_reports() {
    let moto = start_moto();
    let config = sdk(&moto).await;
    let params = ReportParams::new("2026-03-01", "2026-03-31", None, None).unwrap();

    let events = fixture();
    let local = Recording {
        inner: EmbeddedEngine::open(events.path()).await.unwrap(),
        tables: RefCell::new(Vec::new()),
    };
    let expected = build_report(&local, &params, EVENTS_TABLE, &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(
        (
            expected.totals.pulls,
            expected.totals.update_checks,
            expected.totals.downloads
        ),
        (3, 1, 1)
    );
    inject(&moto, &local.tables.borrow());
    // The recording wrapper keeps no sessions, so every query above ran in
    // full, as Athena runs it; the embedded engine itself keeps them once.
    let kept = build_report(
        &EmbeddedEngine::open(events.path()).await.unwrap(),
        &params,
        EVENTS_TABLE,
        &mut |_, _, _| {},
    )
    .await
    .unwrap();
    assert_eq!(kept, expected);

    let athena_client = aws_sdk_athena::Client::new(&config);
    athena_client
        .create_work_group()
        .name("pullgate-reports")
        .configuration(
            aws_sdk_athena::types::WorkGroupConfiguration::builder()
                .bytes_scanned_cutoff_per_query(10 * 1024 * 1024 * 1024)
                .result_configuration(
                    aws_sdk_athena::types::ResultConfiguration::builder()
                        .output_location("s3://reports-bucket/athena/")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let polling = Polling {
        first: Duration::from_millis(10),
        max: Duration::from_millis(50),
        factor: 2.0,
        timeout: Duration::from_secs(30),
    };
    let athena =
        AthenaEngine::new(&config, "pullgate-reports", "pullgate", None).with_polling(polling);
    let mut steps = Vec::new();
    let got = build_report(&athena, &params, "pullgate.events", &mut |done, _, q| {
        steps.push((done, q.to_string()))
    })
    .await
    .unwrap();
    assert_eq!(
        got, expected,
        "the Athena path assembled a different report from the same rows"
    );
    // The sessions step (Athena keeps nothing: each query runs in full), the
    // queries, done.
    assert_eq!(steps.len(), Query::ALL.len() + 2);

    // The SQL Athena received: the Athena rendering of every report query,
    // in the workgroup, and it parses.
    let ids = athena_client
        .list_query_executions()
        .work_group("pullgate-reports")
        .send()
        .await
        .unwrap();
    let mut sent = Vec::new();
    for id in ids.query_execution_ids() {
        let q = athena_client
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .unwrap();
        let q = q.query_execution().unwrap();
        assert_eq!(
            q.query_execution_context().and_then(|c| c.database()),
            Some("pullgate")
        );
        sent.push(q.query().unwrap_or_default().to_string());
    }
    let mut want: Vec<String> = Query::ALL
        .iter()
        .map(|q| q.render(Dialect::Athena, "pullgate.events", &params))
        .collect();
    sent.sort();
    want.sort();
    assert_eq!(sent, want);
    for sql in &sent {
        assert!(
            sql.contains("from_iso8601_timestamp"),
            "not the Athena dialect"
        );
        assert!(sql.contains(&range_filter(&params)), "{sql}");
        parse_as_trino(sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    }

    // Reports in S3.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket("reports-bucket")
        .send()
        .await
        .unwrap();
    let keys = S3Reports::new(&config, "reports-bucket")
        .store("2026-03-31", &got)
        .await
        .unwrap();
    let listed = s3
        .list_objects_v2()
        .bucket("reports-bucket")
        .prefix("reports/")
        .send()
        .await
        .unwrap();
    let mut listed: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    listed.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(listed, keys);
    for key in [
        "reports/2026-03-31/report.json",
        "reports/2026-03-31/report.csv",
        "reports/2026-03-31/report.html",
        "reports/2026-03-31/orgs/acme-corp.html",
        "reports/2026-03-31/orgs/globex.json",
    ] {
        assert!(
            listed.iter().any(|k| k == key),
            "{key} missing from {listed:?}"
        );
    }
}

#[test]
fn every_report_query_parses_in_both_renderings_and_the_ddl_as_hive() {
    let params = ReportParams::new(
        "2026-03-01",
        "2026-03-31",
        Some("images.acme.dev/app".into()),
        Some("Acme".into()),
    )
    .unwrap();
    for q in Query::ALL {
        for dialect in [Dialect::Athena, Dialect::DataFusion] {
            let sql = q.render(dialect, "pullgate.events", &params);
            parse_as_trino(&sql).unwrap_or_else(|e| panic!("{} ({dialect:?}): {e}", q.name()));
        }
    }
    let ddl = events_table_ddl("events-bucket");
    sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::HiveDialect {}, &ddl)
        .unwrap_or_else(|e| panic!("DDL: {e}"));
}

/// What every query Athena runs filters on: the `dt` partitions (the day
/// Firehose stored an event) from a day before the range to `late_days`
/// after it, and the event's own day within the range.
fn range_filter(params: &ReportParams) -> String {
    let (first, last) = params.partitions();
    format!(
        "dt BETWEEN '{first}' AND '{last}' AND substr(\"time\", 1, 10) BETWEEN '{}' AND '{}'",
        params.from, params.to
    )
}

#[test]
fn athena_prunes_on_the_widened_dt_range_and_counts_by_the_events_time() {
    let default = ReportParams::new("2026-03-01", "2026-03-31", None, None).unwrap();
    let wider = default.clone().with_late_days(5).unwrap();
    for (params, filter) in [
        (
            &default,
            "dt BETWEEN '2026-02-28' AND '2026-04-01' AND substr(\"time\", 1, 10) BETWEEN '2026-03-01' AND '2026-03-31'",
        ),
        (
            &wider,
            "dt BETWEEN '2026-02-28' AND '2026-04-05' AND substr(\"time\", 1, 10) BETWEEN '2026-03-01' AND '2026-03-31'",
        ),
    ] {
        assert_eq!(range_filter(params), filter);
        for q in Query::ALL {
            let sql = q.render(Dialect::Athena, "pullgate.events", params);
            assert_eq!(sql.matches(filter).count(), 1, "{}: {sql}", q.name());
            parse_as_trino(&sql).unwrap_or_else(|e| panic!("{}: {e}", q.name()));
        }
    }
}

#[test]
fn a_dialect_the_parser_rejects_is_caught() {
    // The check has teeth: MySQL-style backtick identifiers are not Trino.
    assert!(parse_as_trino("SELECT `time` FROM events").is_err());
}
