-- redaction.sql: the enabled redaction rules and the record of masks per task
-- (ingest/access/redaction.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: redaction_rules
-- The enabled redaction rules: name, pattern, replacement.
SELECT name, pattern, replacement FROM ai_redaction_rules WHERE enabled ORDER BY builtin DESC, name;

-- name: record_redactions
-- Masks applied to the fields of one task as stored: a field's new count replaces its old.
INSERT INTO ai_task_redactions (task_ref, fields, masks)
SELECT t.id, :fields::jsonb,
       (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(:fields::jsonb))
  FROM ai_tasks t WHERE t.task_id = :task_id
ON CONFLICT (task_ref) DO UPDATE
   SET fields = ai_task_redactions.fields || excluded.fields,
       masks = (SELECT coalesce(sum(value::bigint), 0)
                  FROM jsonb_each_text(ai_task_redactions.fields || excluded.fields));

-- name: record_redactions_many
-- Masks per field of many imported tasks (task_ids[i] has fields[i]); replaces old counts.
INSERT INTO ai_task_redactions (task_ref, fields, masks)
SELECT t.id, u.fields, (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(u.fields))
  FROM unnest(:task_ids::uuid[], :fields::jsonb[]) AS u (task_id, fields)
  JOIN ai_tasks t ON t.task_id = u.task_id
ON CONFLICT (task_ref) DO UPDATE SET fields = excluded.fields, masks = excluded.masks;
