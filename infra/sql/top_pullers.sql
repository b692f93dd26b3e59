-- The clients behind the most pulls, with their behaviour.
WITH {{sessions}}
SELECT
  substr(COALESCE(client_id, 'anonymous'), 1, 12) AS client,
  COALESCE(org, '') AS org,
  runtime,
  country,
  pulls,
  update_checks,
  active_days,
  behaviour,
  outlier
FROM clients
WHERE per_org = 0
ORDER BY pulls DESC, update_checks DESC, client
LIMIT {{top}}
