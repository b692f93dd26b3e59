-- The Athena (Glue) table over the Firehose output: one JSON object per line,
-- gzip, partitioned by day under events/dt=YYYY-MM-DD/. Firehose names dt by
-- when a buffer's oldest record arrived, not by the events' own time (an
-- event at 23:59:59 lands in the next day's dt, a replay in the day it was
-- replayed), so the reports take an event's day from its time and use dt
-- only to prune (crates/report/src/sql.rs).
-- Partition projection computes the partitions from the dt predicate, so no
-- crawler and no MSCK REPAIR is ever needed. The columns are exactly the
-- event fields of docs/events.md (a test checks both lists agree); the local
-- embedded engine reads its schema from this file too.
-- {{bucket}} is the events bucket; everything else is literal.
CREATE EXTERNAL TABLE IF NOT EXISTS pullgate.events (
  `v` int,
  `time` string,
  `request_id` string,
  `host` string,
  `mapping` string,
  `name` string,
  `upstream` string,
  `upstream_name` string,
  `method` string,
  `kind` string,
  `reference` string,
  `status` int,
  `mode` string,
  `media_type` string,
  `client_id` string,
  `network_id` string,
  `prefix` string,
  `asn` bigint,
  `as_org` string,
  `country` string,
  `org` string,
  `org_kind` string,
  `org_confidence` double,
  `cloud` string,
  `runtime` string,
  `runtime_version` string,
  `os` string,
  `arch` string,
  `kernel` string,
  `ci` string,
  `ua` string,
  `duration_us` bigint,
  `failover` string
)
PARTITIONED BY (`dt` string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://{{bucket}}/events/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2024-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://{{bucket}}/events/dt=${dt}/'
)
