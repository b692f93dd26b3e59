-- One row per organization: what it pulls, how much, since when and how.
-- Its totals come from its organization row of clients, its client mix from
-- the rows of the clients whose organization it is.
WITH {{sessions}}
SELECT
  org,
  MAX(CASE WHEN per_org = 1 THEN org_kind END) AS kind,
  MAX(CASE WHEN per_org = 1 THEN org_confidence END) AS confidence,
  MAX(CASE WHEN per_org = 1 THEN country END) AS country,
  MAX(CASE WHEN per_org = 1 THEN pulls END) AS pulls,
  MAX(CASE WHEN per_org = 1 THEN usage_pulls END) AS usage_pulls,
  MAX(CASE WHEN per_org = 1 THEN unique_pullers END) AS unique_pullers,
  MAX(CASE WHEN per_org = 1 THEN update_checks END) AS update_checks,
  MAX(CASE WHEN per_org = 1 THEN downloads END) AS downloads,
  MAX(CASE WHEN per_org = 1 THEN repositories END) AS repositories,
  MAX(CASE WHEN per_org = 1 THEN tags END) AS tags,
  MAX(CASE WHEN per_org = 1 THEN first_seen END) AS first_seen,
  MAX(CASE WHEN per_org = 1 THEN last_seen END) AS last_seen,
  MAX(CASE WHEN per_org = 1 THEN active_days END) AS active_days,
  MAX(CASE WHEN per_org = 1 THEN ci_pulls END) AS ci_pulls,
  SUM(CASE WHEN behaviour = 'ci' THEN 1 ELSE 0 END) AS ci_clients,
  SUM(CASE WHEN behaviour = 'polling' THEN 1 ELSE 0 END) AS polling_clients,
  SUM(CASE WHEN behaviour = 'development' THEN 1 ELSE 0 END) AS development_clients,
  SUM(CASE WHEN behaviour = 'occasional' THEN 1 ELSE 0 END) AS occasional_clients,
  SUM(outlier) AS outlier_clients
FROM clients
WHERE org IS NOT NULL {{org_filter}}
GROUP BY org
ORDER BY pulls DESC, update_checks DESC, org
