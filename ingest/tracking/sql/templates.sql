-- templates.sql: prompt templates made from runs, tables of migration 0019
-- (ingest/tracking/templates.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: template_by_id
-- A template the viewer may read, by id; no row otherwise.
SELECT id, user_id, name, created_at FROM ai_templates WHERE id = :template_id;

-- name: template_by_name
-- The template named :name of owner :user_id, if the viewer may read it.
SELECT id, user_id, name, created_at FROM ai_templates WHERE user_id = :user_id AND name = :name;

-- name: insert_template
-- A new template (nothing when the owner has one of that name already).
INSERT INTO ai_templates (user_id, name) VALUES (:user_id, :name)
ON CONFLICT (user_id, name) DO NOTHING
RETURNING id, user_id, name, created_at;

-- name: lock_template
-- Locks a template row while its next version number is taken (one writer at a time).
SELECT id FROM ai_templates WHERE id = :template_id FOR UPDATE;

-- name: insert_template_version
-- The template's next version.
INSERT INTO ai_template_versions
       (template_id, version, messages, settings, placeholders, source_run_id, created_by)
SELECT :template_id, coalesce(max(version), 0) + 1, :messages, :settings, :placeholders,
       :source_run_id, :created_by
  FROM ai_template_versions WHERE template_id = :template_id
RETURNING template_id, version, messages, settings, placeholders, source_run_id, created_by,
          created_at;

-- name: template_version
-- One version of a template (the latest when :version is NULL).
SELECT template_id, version, messages, settings, placeholders, source_run_id, created_by,
       created_at
  FROM ai_template_versions
 WHERE template_id = :template_id AND (CAST(:version AS integer) IS NULL OR version = :version)
 ORDER BY version DESC
 LIMIT 1;

-- name: template_versions
-- Every version of a template, oldest first, without the messages.
SELECT version, placeholders, source_run_id, created_by, created_at
  FROM ai_template_versions WHERE template_id = :template_id ORDER BY version;

-- name: link_template_run
-- Records that run :run_id was made from a template version.
INSERT INTO ai_template_runs (run_id, template_id, version)
VALUES (:run_id, :template_id, :version);

-- name: run_template
-- The template version a run was made from; no row when none.
SELECT tr.template_id, t.name, tr.version
  FROM ai_template_runs tr JOIN ai_templates t ON t.id = tr.template_id
 WHERE tr.run_id = :run_id;

-- name: template_rollup
-- Per version of a template: its runs the viewer may read, their tasks, cost and tokens,
-- the tasks' latency (mean and 95th percentile total time, mean time to first token), and
-- scores: {score name: {"count", "mean"}} over the scores of those runs and their tasks
-- (ai_scores, migration 0020; a boolean's mean is its share of true, a categorical
-- score's mean is null).
WITH score_stats AS (
    SELECT tr.version, s.name, count(*) AS n, avg(s.value)::float8 AS mean
      FROM ai_template_runs tr
      JOIN ai_runs r ON r.id = tr.run_id
      JOIN ai_scores s ON s.run_id = r.id
     WHERE tr.template_id = :template_id
     GROUP BY tr.version, s.name
)
SELECT v.version,
       count(DISTINCT r.id) AS runs,
       count(t.id) AS tasks,
       coalesce(sum(t.cost), 0) AS total_cost,
       coalesce(sum(t.tokens_total), 0) AS total_tokens,
       coalesce(sum(t.cost), 0) / nullif(count(DISTINCT r.id), 0) AS cost_per_run,
       avg(t.total_time)::float8 AS mean_total_time,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY t.total_time) AS p95_total_time,
       avg(t.time_to_first_token)::float8 AS mean_time_to_first_token,
       count(t.id) FILTER (WHERE t.status = 'failed') AS failed_tasks,
       (SELECT coalesce(jsonb_object_agg(ss.name, jsonb_build_object('count', ss.n,
                                                                     'mean', ss.mean)
                                         ORDER BY ss.name), '{}')
          FROM score_stats ss WHERE ss.version = v.version) AS scores
  FROM ai_template_versions v
  LEFT JOIN ai_template_runs tr ON tr.template_id = v.template_id AND tr.version = v.version
  LEFT JOIN ai_runs r ON r.id = tr.run_id
  LEFT JOIN ai_tasks t ON t.run_id = r.id
 WHERE v.template_id = :template_id
 GROUP BY v.version
 ORDER BY v.version;
