-- quality.sql: the demo's evaluators and scores (ingest/demo/quality.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: declare_evaluators
-- The two evaluators the demo's scores name, with their scales (docs/quality.md); a
-- version already declared stays as it is.
INSERT INTO ai_evaluators (evaluator, evaluator_version, name, data_type, min_value,
                           max_value, settings)
VALUES ('helpfulness-judge', 'v1', 'helpfulness', 'numeric', 1, 5,
        '{"kind": "judge", "demo": true}'),
       ('json', 'v1', 'valid_json', 'boolean', 0, 1, '{"kind": "json", "demo": true}')
ON CONFLICT (evaluator, evaluator_version) DO NOTHING;

-- name: add_scores
-- Scores of the completed tasks created in [:start, :end), chosen and valued by the md5 of
-- the task id with :salt (the same rows every time for the same seed; a second call adds
-- nothing): 'helpfulness' 1..5 from the judge on :judged of them, 'valid_json' from the
-- rule on the next :ruled, a person's 'thumbs' (the run's owner) on the next :rated. A
-- task's chance of a good score rises with its model's tier (:premium, :cheap model names)
-- and with the variant 'prompt-v2' (the demo's A/B test). Returns one row: scores added.
WITH done AS (
    SELECT t.task_id, t.run_id, t.model, t.variant,
           least(coalesce(t.completed_at, t.updated_at), now()) AS done_at,
           ('x' || substr(md5(t.task_id::text || :salt), 1, 8))::bit(32)::bigint
               / 4294967296.0 AS pick,
           ('x' || substr(md5(t.task_id::text || :salt), 9, 8))::bit(32)::bigint
               / 4294967296.0 AS luck
      FROM ai_tasks t
     WHERE t.status = 'completed' AND t.created_at >= :start AND t.created_at < :end
), chosen AS (
    SELECT d.*, coalesce(d.variant, r.variant) AS ab, r.user_id AS owner,
           CASE WHEN d.pick < :judged THEN 'helpfulness'
                WHEN d.pick < :judged + :ruled THEN 'valid_json'
                ELSE 'thumbs' END AS kind
      FROM done d JOIN ai_runs r ON r.id = d.run_id
     WHERE d.pick < :judged + :ruled + :rated
), valued AS (
    SELECT c.*,
           0.55 + CASE WHEN c.model = ANY(:premium) THEN 0.12
                       WHEN c.model = ANY(:cheap) THEN -0.12 ELSE 0 END
                + CASE WHEN c.ab = 'prompt-v2' THEN 0.08 ELSE 0 END AS good
      FROM chosen c
), added AS (
    INSERT INTO ai_scores (run_id, task_id, name, data_type, value, label, source, author,
                           evaluator, evaluator_version, created_at, updated_at)
    SELECT run_id, task_id, kind,
           CASE kind WHEN 'helpfulness' THEN 'numeric' ELSE 'boolean' END,
           value,
           CASE WHEN kind = 'helpfulness' THEN NULL WHEN value = 1 THEN 'true' ELSE 'false' END,
           CASE kind WHEN 'helpfulness' THEN 'model' WHEN 'valid_json' THEN 'rule'
                     ELSE 'human' END,
           CASE kind WHEN 'thumbs' THEN owner ELSE '' END,
           CASE kind WHEN 'helpfulness' THEN 'helpfulness-judge' WHEN 'valid_json' THEN 'json'
                     ELSE '' END,
           CASE kind WHEN 'thumbs' THEN '' ELSE 'v1' END,
           done_at, done_at
      FROM (SELECT v.*,
                   CASE kind
                       WHEN 'helpfulness' THEN least(5, 1 + floor(4 * luck + 2 * good))
                       WHEN 'valid_json' THEN (luck < 0.9 + 0.1 * good)::int
                       ELSE (luck < 0.35 + 0.6 * good)::int
                   END::float8 AS value
              FROM valued v) s
    ON CONFLICT (run_id, coalesce(task_id, '00000000-0000-0000-0000-000000000000'::uuid), name,
                 evaluator, evaluator_version, author) DO NOTHING
    RETURNING 1
)
SELECT count(*) AS added FROM added;
