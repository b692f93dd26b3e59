-- Shared CTEs of the report queries that look at clients and organizations
-- (appended to the sessions placeholder after sessions.sql): per client and
-- per organization tallies of the sessions, and each client's behaviour.
-- The time since the client's previous session on the repository.
spaced AS (
  SELECT sessions.*,
    start_t - LAG(start_t) OVER (PARTITION BY who, host, name ORDER BY start_t) AS gap
  FROM sessions
),
-- One pass over the sessions makes a row per client (per_org = 0) and a row
-- per organization (per_org = 1). Engines that inline CTEs (DataFusion, and
-- Athena, which bills every scan) would sessionize all requests again for
-- each further reference to sessions, so reports that need clients and
-- organizations both take them from here.
tallies AS (
  SELECT
    GROUPING(who) AS per_org,
    who,
    MAX(client_id) AS client_id,
    MAX(org) AS org,
    MAX(org_kind) AS org_kind,
    MAX(org_confidence) AS org_confidence,
    MAX(runtime) AS runtime,
    MAX(country) AS country,
    COUNT(*) AS sessions,
    SUM(pulls) AS pulls,
    SUM(usage_pulls) AS usage_pulls,
    SUM(update_checks) AS update_checks,
    SUM(downloads) AS downloads,
    COUNT(DISTINCT CASE WHEN pulls = 1 THEN client_id END) AS unique_pullers,
    COUNT(DISTINCT repository) AS repositories,
    COUNT(DISTINCT tag) AS tags,
    MIN(first_time) AS first_seen,
    MAX(last_time) AS last_seen,
    COUNT(DISTINCT day) AS active_days,
    SUM(CASE WHEN pulls = 1 THEN is_ci ELSE 0 END) AS ci_pulls,
    MAX(is_ci) AS is_ci,
    AVG(gap) AS gap_avg,
    STDDEV_POP(gap) AS gap_sd
  FROM spaced
  GROUP BY GROUPING SETS ((who), (org))
),
-- Behaviour of each client over the range: CI (a CI user agent or CI
-- address range), regular polling (production deployments: at least four
-- sessions at steady intervals), irregular pulls of several versions (local
-- development), and outliers (one client behind a large share of all pulls).
-- Organization rows pass through with behaviour and outlier left empty.
clients AS (
  SELECT tallies.*,
    CASE
      WHEN per_org = 1 THEN NULL
      WHEN is_ci = 1 THEN 'ci'
      WHEN sessions >= 4 AND gap_avg > 0 AND gap_sd <= 0.25 * gap_avg THEN 'polling'
      WHEN tags >= 2 THEN 'development'
      ELSE 'occasional'
    END AS behaviour,
    CASE
      WHEN per_org = 1 THEN NULL
      WHEN pulls >= {{outlier_share}} * SUM(pulls) OVER (PARTITION BY per_org) AND COUNT(*) OVER (PARTITION BY per_org) >= {{outlier_min_clients}} THEN 1
      ELSE 0
    END AS outlier
  FROM tallies
)
