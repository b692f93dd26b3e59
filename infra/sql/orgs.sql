-- One row per organization: what it pulls, how much, since when and how.
WITH {{sessions}},
org_sessions AS (
  SELECT * FROM sessions WHERE org IS NOT NULL {{org_filter}}
),
org_clients AS (
  SELECT
    org,
    SUM(CASE WHEN behaviour = 'ci' THEN 1 ELSE 0 END) AS ci_clients,
    SUM(CASE WHEN behaviour = 'polling' THEN 1 ELSE 0 END) AS polling_clients,
    SUM(CASE WHEN behaviour = 'development' THEN 1 ELSE 0 END) AS development_clients,
    SUM(CASE WHEN behaviour = 'occasional' THEN 1 ELSE 0 END) AS occasional_clients,
    SUM(outlier) AS outlier_clients
  FROM clients
  WHERE org IS NOT NULL
  GROUP BY org
)
SELECT
  s.org AS org,
  MAX(s.org_kind) AS kind,
  MAX(s.org_confidence) AS confidence,
  MAX(s.country) AS country,
  SUM(s.pulls) AS pulls,
  SUM(s.usage_pulls) AS usage_pulls,
  COUNT(DISTINCT CASE WHEN s.pulls = 1 THEN s.client_id END) AS unique_pullers,
  SUM(s.update_checks) AS update_checks,
  SUM(s.downloads) AS downloads,
  COUNT(DISTINCT s.repository) AS repositories,
  COUNT(DISTINCT s.tag) AS tags,
  MIN(s.first_time) AS first_seen,
  MAX(s.last_time) AS last_seen,
  COUNT(DISTINCT s.dt) AS active_days,
  SUM(CASE WHEN s.pulls = 1 THEN s.is_ci ELSE 0 END) AS ci_pulls,
  MAX(c.ci_clients) AS ci_clients,
  MAX(c.polling_clients) AS polling_clients,
  MAX(c.development_clients) AS development_clients,
  MAX(c.occasional_clients) AS occasional_clients,
  MAX(c.outlier_clients) AS outlier_clients
FROM org_sessions s
LEFT JOIN org_clients c ON c.org = s.org
GROUP BY s.org
ORDER BY pulls DESC, update_checks DESC, org
