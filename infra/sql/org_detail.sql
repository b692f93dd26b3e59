-- Per organization: repositories and tags used, weekly trend, runtime,
-- platform and CI mix (one grouping set each, always with the organization).
WITH {{sessions}}
SELECT
  org,
  CASE
    WHEN repository_ IS NOT NULL THEN 'repository'
    WHEN tag_ IS NOT NULL THEN 'tag'
    WHEN week_ IS NOT NULL THEN 'week'
    WHEN runtime_ IS NOT NULL THEN 'runtime'
    WHEN platform_ IS NOT NULL THEN 'platform'
    ELSE 'ci'
  END AS dimension,
  COALESCE(repository_, tag_, week_, runtime_, platform_, ci_) AS value,
  SUM(pulls) AS pulls,
  SUM(update_checks) AS update_checks,
  COUNT(DISTINCT CASE WHEN pulls = 1 THEN client_id END) AS unique_pullers
FROM (
  SELECT sessions.*,
    repository AS repository_,
    concat(repository, ':', COALESCE(tag, '@digest')) AS tag_,
    substr(CAST(date_trunc('week', CAST(day AS DATE)) AS VARCHAR), 1, 10) AS week_,
    concat(runtime, ' ', runtime_version) AS runtime_,
    concat(os, '/', arch) AS platform_,
    COALESCE(ci, 'none') AS ci_
  FROM sessions
  WHERE org IS NOT NULL {{org_filter}}
) s
GROUP BY GROUPING SETS ((org, repository_), (org, tag_), (org, week_), (org, runtime_), (org, platform_), (org, ci_))
ORDER BY org, dimension, pulls DESC, value
