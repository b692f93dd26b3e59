-- Pulls by repository, tag, runtime, runtime version, platform, country,
-- organization kind and CI provider (one grouping set each), and by
-- repository and runtime together (which clients pull what).
WITH {{sessions}}
SELECT
  CASE
    WHEN repository_ IS NOT NULL AND runtime_ IS NOT NULL THEN 'repository_runtime'
    WHEN repository_ IS NOT NULL THEN 'repository'
    WHEN tag_ IS NOT NULL THEN 'tag'
    WHEN runtime_ IS NOT NULL THEN 'runtime'
    WHEN runtime_version_ IS NOT NULL THEN 'runtime_version'
    WHEN platform_ IS NOT NULL THEN 'platform'
    WHEN country_ IS NOT NULL THEN 'country'
    WHEN org_kind_ IS NOT NULL THEN 'org_kind'
    ELSE 'ci'
  END AS dimension,
  CASE
    WHEN repository_ IS NOT NULL AND runtime_ IS NOT NULL THEN concat(repository_, ' ', runtime_)
    ELSE COALESCE(repository_, tag_, runtime_, runtime_version_, platform_, country_, org_kind_, ci_)
  END AS value,
  SUM(pulls) AS pulls,
  SUM(usage_pulls) AS usage_pulls,
  SUM(update_checks) AS update_checks,
  SUM(downloads) AS downloads,
  COUNT(DISTINCT CASE WHEN pulls = 1 THEN client_id END) AS unique_pullers
FROM (
  SELECT sessions.*,
    repository AS repository_,
    concat(repository, ':', COALESCE(tag, '@digest')) AS tag_,
    runtime AS runtime_,
    concat(runtime, ' ', runtime_version) AS runtime_version_,
    concat(os, '/', arch) AS platform_,
    country AS country_,
    COALESCE(org_kind, 'unknown') AS org_kind_,
    COALESCE(ci, 'none') AS ci_
  FROM sessions
) s
GROUP BY GROUPING SETS ((repository_), (repository_, runtime_), (tag_), (runtime_), (runtime_version_), (platform_), (country_), (org_kind_), (ci_))
ORDER BY dimension, pulls DESC, value
