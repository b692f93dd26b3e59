//! AWS adapters of the report ports: [`athena::AthenaEngine`] runs the
//! report SQL on Athena; [`s3_reports::S3Reports`] stores rendered reports.

pub mod athena;
pub mod s3_reports;
