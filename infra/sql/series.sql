-- Pulls, checks and unique pullers by day, ISO week (Monday) and month,
-- each session on the day of its own first request (sessions.sql).
WITH {{sessions}}
SELECT
  CASE WHEN day IS NOT NULL THEN 'day' WHEN week IS NOT NULL THEN 'week' ELSE 'month' END AS granularity,
  COALESCE(day, week, month) AS period,
  SUM(pulls) AS pulls,
  SUM(usage_pulls) AS usage_pulls,
  SUM(update_checks) AS update_checks,
  SUM(downloads) AS downloads,
  COUNT(DISTINCT CASE WHEN pulls = 1 THEN client_id END) AS unique_pullers
FROM (
  SELECT sessions.*,
    substr(CAST(date_trunc('week', CAST(day AS DATE)) AS VARCHAR), 1, 10) AS week,
    substr(day, 1, 7) AS month
  FROM sessions
) s
GROUP BY GROUPING SETS ((day), (week), (month))
ORDER BY granularity, period
