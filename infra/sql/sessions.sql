-- Shared CTEs of every report query (the sessions placeholder): requests
-- sessionized per client and repository, then classified the way Docker's
-- publisher analytics does (the README's "Reports" section has the table and
-- the reasons). Athena runs them inline in every query; the embedded engine
-- runs them once per report (`WITH ... SELECT * FROM sessions`) into a table
-- that the queries' sessions CTE then reads.
--
-- req: the manifest and blob requests that were answered (2xx/3xx). A client
-- without an id (DNT / Sec-GPC) is keyed by its network prefix and user agent
-- so that its requests still group into pulls; it is not a unique puller.
-- day: the UTC day of the request's own time. The dt partition says when
-- the event was stored (Firehose: when it arrived, a replay days later),
-- so it only prunes, in the where placeholder, and nothing counts by it.
req AS (
  SELECT
    COALESCE(client_id, concat('anonymous:', COALESCE(prefix, ''), '|', COALESCE(ua, ''))) AS who,
    client_id, host, name, {{event_day}} AS day, "time", request_id, method, kind, reference,
    {{epoch_seconds}} AS t,
    CASE WHEN kind = 'blob' THEN 2 WHEN reference LIKE '%:%' THEN 1 ELSE 0 END AS step,
    COALESCE(runtime, 'unknown') AS runtime,
    COALESCE(runtime_version, '') AS runtime_version,
    COALESCE(os, '') AS os,
    COALESCE(arch, '') AS arch,
    COALESCE(country, '') AS country,
    org, org_kind, org_confidence, ci, cloud
  FROM {{events}}
  WHERE {{where}}
    AND kind IN ('manifest', 'blob')
    AND method IN ('GET', 'HEAD')
    AND status >= 200 AND status < 400
    AND name IS NOT NULL
),
-- seq: what came just before each request of the same client and repository,
-- and the last tag request before it. step orders a tag request before the
-- digest requests it leads to, should they carry the same millisecond. All
-- windows share one partitioning and order, so engines sort the requests
-- once (a window per reference and method cost DataFusion a second sort and
-- 40 times the window time).
seq AS (
  SELECT req.*,
    LAG(t) OVER (PARTITION BY who, host, name ORDER BY t, step, request_id) AS prev_t,
    LAG(reference) OVER (PARTITION BY who, host, name ORDER BY t, step, request_id) AS prev_reference,
    LAG(method) OVER (PARTITION BY who, host, name ORDER BY t, step, request_id) AS prev_method,
    {{lag_tag_time}} OVER (PARTITION BY who, host, name ORDER BY t, step, request_id) AS prev_tag_t,
    {{lag_tag}} OVER (PARTITION BY who, host, name ORDER BY t, step, request_id) AS prev_tag
  FROM req
),
-- A request opens a session when it is a manifest request by tag (every tag
-- request is a new pull or check: a client that pulls twice pulled twice),
-- except
--  * a HEAD by tag that repeats the client's previous request on this
--    repository moments later: the same request again after authenticating
--    at the upstream (redirect mode: the upstream's 401 is not ours to see);
--  * cri-o's second fetch of the same tag moments later (cri-o#5039);
-- or a manifest request by digest that does not follow another request of
-- the client on this repository within {{gap_seconds}} s (a pull by digest).
marked AS (
  SELECT seq.*,
    CASE
      WHEN step = 0 AND method = 'HEAD' AND prev_reference = reference AND prev_method = 'HEAD' AND t - prev_t <= {{retry_seconds}} THEN 0
      WHEN step = 0 AND NOT (runtime = 'cri-o' AND prev_tag IS NOT NULL AND prev_tag = reference AND t - prev_tag_t <= {{crio_refetch_seconds}}) THEN 1
      WHEN step = 1 AND (prev_t IS NULL OR t - prev_t > {{gap_seconds}}) THEN 1
      ELSE 0
    END AS opens
  FROM seq
),
numbered AS (
  SELECT marked.*,
    SUM(opens) OVER (PARTITION BY who, host, name ORDER BY t, step, request_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_no
  FROM marked
),
-- One row per session. docs = distinct manifest documents fetched with GET
-- (a tag GET counts as the document the tag names). A session's day is
-- that of its first request.
grouped AS (
  SELECT
    who, host, name, session_no,
    MAX(client_id) AS client_id,
    MIN(day) AS day,
    MIN("time") AS first_time,
    MAX("time") AS last_time,
    MIN(t) AS start_t,
    MAX(CASE WHEN opens = 1 THEN method END) AS opener_method,
    MAX(CASE WHEN opens = 1 THEN step END) AS opener_step,
    MAX(CASE WHEN opens = 1 AND step = 0 THEN reference END) AS tag,
    COUNT(DISTINCT CASE WHEN step < 2 AND method = 'GET' THEN reference END) AS docs,
    SUM(CASE WHEN step = 2 AND method = 'GET' THEN 1 ELSE 0 END) AS blob_gets,
    MAX(runtime) AS runtime,
    MAX(runtime_version) AS runtime_version,
    MAX(os) AS os,
    MAX(arch) AS arch,
    MAX(country) AS country,
    MAX(org) AS org,
    MAX(org_kind) AS org_kind,
    MAX(org_confidence) AS org_confidence,
    MAX(ci) AS ci,
    MAX(cloud) AS cloud
  FROM numbered
  WHERE session_no > 0
  GROUP BY who, host, name, session_no
),
-- Docker's action table: HEAD by tag alone is a version check; any other
-- session is one pull (by tag or by digest) under the analytics rule. The
-- usage rule counts one pull per single-platform manifest fetched: of two or
-- more documents one is the index.
sessions AS (
  SELECT grouped.*,
    concat(host, '/', name) AS repository,
    CASE
      WHEN opener_step = 0 AND opener_method = 'HEAD' AND docs = 0 THEN 'check'
      WHEN opener_step = 0 THEN 'tag'
      ELSE 'digest'
    END AS action,
    CASE WHEN opener_step = 0 AND opener_method = 'HEAD' AND docs = 0 THEN 0 ELSE 1 END AS pulls,
    CASE WHEN docs = 0 THEN 0 WHEN docs = 1 THEN 1 ELSE docs - 1 END AS usage_pulls,
    CASE WHEN opener_step = 0 AND opener_method = 'HEAD' AND docs = 0 THEN 1 ELSE 0 END AS update_checks,
    CASE WHEN blob_gets > 0 THEN 1 ELSE 0 END AS downloads,
    CASE WHEN ci IS NOT NULL THEN 1 ELSE 0 END AS is_ci
  FROM grouped
)
