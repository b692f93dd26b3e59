-- Totals over the range.
WITH {{sessions}}
SELECT
  COUNT(*) AS sessions,
  SUM(pulls) AS pulls,
  SUM(usage_pulls) AS usage_pulls,
  SUM(CASE WHEN action = 'tag' THEN 1 ELSE 0 END) AS pulls_by_tag,
  SUM(CASE WHEN action = 'digest' THEN 1 ELSE 0 END) AS pulls_by_digest,
  SUM(update_checks) AS update_checks,
  SUM(downloads) AS downloads,
  COUNT(DISTINCT CASE WHEN pulls = 1 THEN client_id END) AS unique_pullers,
  COUNT(DISTINCT client_id) AS unique_clients,
  COUNT(DISTINCT org) AS organizations,
  SUM(CASE WHEN pulls = 1 THEN is_ci ELSE 0 END) AS ci_pulls,
  MIN(first_time) AS first_seen,
  MAX(last_time) AS last_seen
FROM sessions
