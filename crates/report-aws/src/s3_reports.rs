//! Rendered reports in S3: `reports/<YYYY-MM-DD>/report.{json,csv,html}` and
//! one set per organization under `orgs/`.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use pullgate_report::model::Report;
use pullgate_report::render;

/// A report file S3 did not take, the SDK's error kept as it came.
#[derive(Debug, thiserror::Error)]
#[error("cannot write s3://{bucket}/{key}")]
pub struct StoreError {
    pub bucket: String,
    pub key: String,
    #[source]
    pub source: SdkError<PutObjectError>,
}

pub struct S3Reports {
    client: Client,
    bucket: String,
}

impl S3Reports {
    pub fn new(config: &aws_config::SdkConfig, bucket: &str) -> Self {
        // Path-style addressing works against S3 and against moto alike.
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build();
        S3Reports {
            client: Client::from_conf(s3),
            bucket: bucket.to_string(),
        }
    }

    /// Writes the overall report and each organization's own; returns the keys.
    pub async fn store(&self, day: &str, report: &Report) -> Result<Vec<String>, StoreError> {
        let prefix = format!("reports/{day}");
        let mut keys = Vec::new();
        for (key, body, ty) in files(&prefix, "report", report) {
            self.put(&key, body, ty).await?;
            keys.push(key);
        }
        for org in &report.organizations {
            let single = Report {
                organization: Some(org.name.clone()),
                organizations: vec![org.clone()],
                ..report.clone()
            };
            for (key, body, ty) in files(&format!("{prefix}/orgs"), &slug(&org.name), &single) {
                self.put(&key, body, ty).await?;
                keys.push(key);
            }
        }
        Ok(keys)
    }

    async fn put(&self, key: &str, body: String, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(|source| StoreError {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                source,
            })
    }
}

fn files(prefix: &str, stem: &str, report: &Report) -> [(String, String, &'static str); 3] {
    [
        (
            format!("{prefix}/{stem}.json"),
            render::json(report),
            "application/json",
        ),
        (
            format!("{prefix}/{stem}.csv"),
            render::csv(report),
            "text/csv; charset=utf-8",
        ),
        (
            format!("{prefix}/{stem}.html"),
            render::html(report),
            "text/html; charset=utf-8",
        ),
    ]
}

/// A file name for an organization: lowercase ASCII letters, digits and
/// dashes ("Acme Corp, Inc." → "acme-corp-inc").
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "organization".into()
    } else {
        out
    }
}
