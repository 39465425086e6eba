-- day_totals.sql: the mirror's day totals, which queries/day_totals.py reads, written by the
-- full load and kept exact by every incremental apply (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- An apply keeps them by difference, in its own transaction: the old copies of the tasks
-- it removes count -1, the copies it inserts +1 (day_total_changes), and their sums per
-- key are appended (merge_day_totals). No day is ever written again whole, no row
-- updated but for a team or tag change (docs/scale.md, "Day totals").

-- name: create_day_totals
-- day_totals: per day, run, user, provider and model of the tasks (one row after a full
-- build; an apply may append more, see merge_day_totals; team and tags
-- are the user's and the run's, the same for every task of the row): how many tasks, the
-- sums of their cost and tokens (0 for NULL), how many have no cost (unpriced), failed
-- and finished (completed, failed or cancelled). Sorted by day at the full load.
-- day_ttft: per day, how many completed tasks have each time to first token (exact
-- percentiles from these counts; after incremental syncs a (day, ttft) may have several
-- rows, signed, that sum to its count).
-- day_tag_totals: the usage sums of day_totals with the run's tags unnested, one row per
-- tag (tag NULL for a run without tags, as queries/engine.py groups by tag), so that
-- usage by tag reads no list (unnesting the tags of every row was most of its time):
-- per day, run, user and tag they sum to what day_totals' rows of that day, run and user
-- give each of the run's tags (merge_day_tag_totals and retag_runs keep them so).
CREATE TABLE day_totals (
    day                 INTEGER,
    month_day           INTEGER,
    run_key             INTEGER,
    user_key            INTEGER,
    provider            VARCHAR,
    model               VARCHAR,
    team                VARCHAR,
    tags                VARCHAR[],
    tasks               BIGINT,
    cost                DECIMAL(38, 10),
    tokens_input        BIGINT,
    tokens_output       BIGINT,
    tokens_total        BIGINT,
    tokens_cached_input BIGINT,
    tokens_cache_write  BIGINT,
    unpriced            BIGINT,
    failed              BIGINT,
    finished            BIGINT
);
CREATE TABLE day_ttft (day INTEGER, ttft INTEGER, n BIGINT);
-- The tag totals take the types of day_totals' columns.
CREATE TABLE day_tag_totals AS
SELECT day, month_day, run_key, user_key, NULL::VARCHAR AS tag, tasks, cost, tokens_input,
       tokens_output, tokens_total, tokens_cached_input, tokens_cache_write, unpriced
  FROM day_totals LIMIT 0;

-- name: drop_day_totals
DROP TABLE IF EXISTS day_totals;
DROP TABLE IF EXISTS day_ttft;
DROP TABLE IF EXISTS day_tag_totals;

-- name: all_day_totals
-- Full load, once the tasks have their keys.
INSERT INTO day_totals
SELECT day, any_value(month_day), run_key, user_key, provider, model, any_value(team),
       any_value(tags), count(*), coalesce(sum(cost), 0), coalesce(sum(tokens_input), 0),
       coalesce(sum(tokens_output), 0), coalesce(sum(tokens_total), 0),
       coalesce(sum(tokens_cached_input), 0), coalesce(sum(tokens_cache_write), 0),
       count(*) FILTER (WHERE cost IS NULL), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled'))
  FROM tasks
 GROUP BY day, run_key, user_key, provider, model
 ORDER BY day, run_key;
INSERT INTO day_ttft
SELECT day, time_to_first_token, count(*)
  FROM tasks
 WHERE status = 'completed' AND time_to_first_token IS NOT NULL
 GROUP BY day, time_to_first_token
 ORDER BY day, time_to_first_token;
{{day_totals.all_day_tag_totals}};

-- name: all_day_tag_totals
-- Full load, after day_totals.
INSERT INTO day_tag_totals
WITH tagged_source AS (SELECT * FROM day_totals)
{{day_totals.tag_totals}}
 ORDER BY day, run_key;

-- name: tag_totals
-- The tag totals of the day totals' rows in tagged_source (a CTE of the caller's): their
-- sums per day, run and user (a run's rows of one day differ mostly by model: at 1M demo
-- tasks 581k rows for 498k with them summed), then one row per tag of the run (its tags
-- are the same on all its rows once propagate_run_attributes has run).
SELECT day, month_day, run_key, user_key,
       unnest(CASE WHEN coalesce(len(tags), 0) = 0 THEN [NULL::VARCHAR] ELSE tags END)
           AS tag,
       tasks, cost, tokens_input, tokens_output, tokens_total, tokens_cached_input,
       tokens_cache_write, unpriced
  FROM (SELECT day, any_value(month_day) AS month_day, run_key, user_key,
               any_value(tags) AS tags, sum(tasks) AS tasks, sum(cost) AS cost,
               sum(tokens_input) AS tokens_input, sum(tokens_output) AS tokens_output,
               sum(tokens_total) AS tokens_total,
               sum(tokens_cached_input) AS tokens_cached_input,
               sum(tokens_cache_write) AS tokens_cache_write, sum(unpriced) AS unpriced
          FROM tagged_source
         GROUP BY day, run_key, user_key)

-- name: day_totals_compacted
-- After all_day_totals or compact_day_totals, the mirror's facts (tables.sql, mirror_meta)
-- after day_totals, day_ttft and day_tag_totals are written one row per key: how many rows
-- they then have, and none appended since (compaction_due).
INSERT OR REPLACE INTO mirror_meta
VALUES ('day_total_rows_compacted',
        ((SELECT count(*) FROM day_totals) + (SELECT count(*) FROM day_ttft)
         + (SELECT count(*) FROM day_tag_totals))::VARCHAR),
       ('day_total_rows_appended', '0');

-- name: start_day_total_changes
-- The copies of tasks an apply removes (sign -1) and inserts (+1).
CREATE OR REPLACE TEMP TABLE day_total_changes AS
SELECT 0 AS sign, day, month_day, run_key, user_key, provider, model, team, tags, cost,
       tokens_input, tokens_output, tokens_total, tokens_cached_input, tokens_cache_write,
       status, time_to_first_token
  FROM tasks LIMIT 0;

-- name: old_day_total_copies
-- Before remove_changed_tasks deletes them: the old copies of the tasks in changed_rows,
-- without month_day, team and tags (merge_day_totals does not read them from old copies:
-- the list of tags was the dearest column to read).
INSERT INTO day_total_changes
SELECT -1, day, NULL, run_key, user_key, provider, model, NULL, NULL, cost, tokens_input,
       tokens_output, tokens_total, tokens_cached_input, tokens_cache_write, status,
       time_to_first_token
  FROM tasks
 WHERE rowid IN (SELECT row_id FROM changed_rows);

-- name: new_day_total_copies
-- The copies insert_tasks has just written (keyed_tasks).
INSERT INTO day_total_changes
SELECT 1, day, month_day, run_key, user_key, provider, model, team, tags, cost, tokens_input,
       tokens_output, tokens_total, tokens_cached_input, tokens_cache_write, status,
       time_to_first_token
  FROM keyed_tasks;

-- name: merge_day_totals
-- Adds the changes to day_totals and day_ttft by appending them: a key (day, run, user,
-- provider, model) may have several rows, the sums of which are its totals. A key whose
-- tasks all went (its rows' tasks and the change's sum to 0) loses its rows instead, so
-- every key left has a task, which the distinct runs and users rely on; only the keys
-- that lose tasks are looked up. An appended row takes the team and tags of its inserted
-- copies (the current ones; propagate_teams and propagate_run_attributes, after this, set
-- them on every row of a changed user or run), else those of its key's rows (a key that
-- only loses tasks). No row is updated: an UPDATE of scattered
-- rows made the commit write their columns again (1.5 s at 2M tasks). A full build
-- writes one row per key again.
CREATE OR REPLACE TEMP TABLE day_total_rows AS
WITH d AS (
    SELECT day, run_key, user_key, provider, model,
           date_diff('day', DATE '1970-01-01', date_trunc('month', DATE '1970-01-01' + day))
               ::INTEGER AS month_day,
           bool_or(sign > 0) AS inserted, any_value(team) FILTER (WHERE sign > 0) AS team,
           any_value(tags) FILTER (WHERE sign > 0) AS tags,
           sum(sign) AS tasks, sum(sign * coalesce(cost, 0)) AS cost,
           sum(sign * coalesce(tokens_input, 0)) AS tokens_input,
           sum(sign * coalesce(tokens_output, 0)) AS tokens_output,
           sum(sign * coalesce(tokens_total, 0)) AS tokens_total,
           sum(sign * coalesce(tokens_cached_input, 0)) AS tokens_cached_input,
           sum(sign * coalesce(tokens_cache_write, 0)) AS tokens_cache_write,
           sum(CASE WHEN cost IS NULL THEN sign ELSE 0 END) AS unpriced,
           sum(CASE WHEN status = 'failed' THEN sign ELSE 0 END) AS failed,
           sum(CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN sign ELSE 0 END)
               AS finished
      FROM day_total_changes
     GROUP BY day, run_key, user_key, provider, model
),
h AS (
    SELECT day, run_key, user_key, provider, model, sum(tasks) AS had,
           list(rowid) AS row_ids, any_value(team) AS had_team, any_value(tags) AS had_tags
      FROM day_totals
     WHERE run_key IN (SELECT run_key FROM d WHERE tasks < 0)
     GROUP BY day, run_key, user_key, provider, model
)
SELECT d.*, h.had, h.row_ids, h.had_team, h.had_tags
  FROM d
  LEFT JOIN h
    ON h.day = d.day AND h.run_key = d.run_key AND h.user_key IS NOT DISTINCT FROM d.user_key
   AND h.provider IS NOT DISTINCT FROM d.provider AND h.model IS NOT DISTINCT FROM d.model;
DELETE FROM day_totals
 WHERE rowid IN (SELECT unnest(row_ids) FROM day_total_rows WHERE had + tasks = 0);
CREATE OR REPLACE TEMP TABLE appended_day_totals AS
SELECT day, month_day, run_key, user_key, provider, model,
       CASE WHEN inserted THEN team ELSE had_team END AS team,
       CASE WHEN inserted THEN tags ELSE had_tags END AS tags, tasks, cost, tokens_input,
       tokens_output, tokens_total, tokens_cached_input, tokens_cache_write, unpriced, failed,
       finished
  FROM day_total_rows
 WHERE (had IS NULL OR had + tasks <> 0)
   AND NOT (tasks = 0 AND cost = 0 AND tokens_input = 0 AND tokens_output = 0
            AND tokens_total = 0 AND tokens_cached_input = 0 AND tokens_cache_write = 0
            AND unpriced = 0 AND failed = 0 AND finished = 0);
CREATE OR REPLACE TEMP TABLE appended_day_ttft AS
SELECT day, time_to_first_token AS ttft, sum(sign) AS n
  FROM day_total_changes
 WHERE status = 'completed' AND time_to_first_token IS NOT NULL
 GROUP BY day, time_to_first_token
HAVING sum(sign) <> 0;
INSERT INTO day_totals SELECT * FROM appended_day_totals;
INSERT INTO day_ttft SELECT * FROM appended_day_ttft;
-- The rows appended since the last compaction, a fact (compaction_due).
INSERT OR REPLACE INTO mirror_meta
SELECT 'day_total_rows_appended',
       (coalesce((SELECT value::BIGINT FROM mirror_meta
                   WHERE key = 'day_total_rows_appended'), 0)
        + (SELECT count(*) FROM appended_day_totals)
        + (SELECT count(*) FROM appended_day_ttft))::VARCHAR;

-- name: merge_day_tag_totals
-- After merge_day_totals: the change of every changed key (day_total_rows), once per tag
-- of its run, is appended to day_tag_totals (the tags its appended row takes; a key that
-- lost all its tasks too: its change takes its sums away). A day, run and user left
-- without a key in day_totals loses all its tag rows, so every row left has a task, which
-- the distinct counts rely on. Nothing of day_totals' other rows is read: they are
-- scattered, and reading their columns for 10k changes at 1M cost 20-35 ms of CPU. A run
-- whose tags change gets its tag totals written again (day_totals_of_runs).
CREATE OR REPLACE TEMP TABLE appended_day_tag_totals AS
SELECT day, month_day, run_key, user_key,
       unnest(CASE WHEN coalesce(len(tags), 0) = 0 THEN [NULL::VARCHAR] ELSE tags END)
           AS tag,
       tasks, cost, tokens_input, tokens_output, tokens_total, tokens_cached_input,
       tokens_cache_write, unpriced
  FROM (SELECT day, month_day, run_key, user_key,
               CASE WHEN inserted THEN tags ELSE had_tags END AS tags, tasks, cost,
               tokens_input, tokens_output, tokens_total, tokens_cached_input,
               tokens_cache_write, unpriced
          FROM day_total_rows
         WHERE NOT (tasks = 0 AND cost = 0 AND tokens_input = 0 AND tokens_output = 0
                    AND tokens_total = 0 AND tokens_cached_input = 0
                    AND tokens_cache_write = 0 AND unpriced = 0));
INSERT INTO day_tag_totals SELECT * FROM appended_day_tag_totals;
CREATE OR REPLACE TEMP TABLE gone_day_runs AS
SELECT day, run_key, user_key FROM day_total_rows WHERE had + tasks = 0
EXCEPT
SELECT day, run_key, user_key FROM day_totals
 WHERE run_key IN (SELECT run_key FROM day_total_rows WHERE had + tasks = 0);
DELETE FROM day_tag_totals
 WHERE rowid IN (SELECT t.rowid FROM day_tag_totals t
                   JOIN gone_day_runs g
                     ON g.day = t.day AND g.run_key = t.run_key
                    AND g.user_key IS NOT DISTINCT FROM t.user_key);
INSERT OR REPLACE INTO mirror_meta
SELECT 'day_total_rows_appended',
       (coalesce((SELECT value::BIGINT FROM mirror_meta
                   WHERE key = 'day_total_rows_appended'), 0)
        + (SELECT count(*) FROM appended_day_tag_totals))::VARCHAR;
DROP TABLE appended_day_tag_totals;
DROP TABLE gone_day_runs;

-- name: compaction_due
-- Whether the rows appended since the last compaction (or full build) pass :share of the
-- rows day_totals and day_ttft had then (two of the mirror's facts: nothing is counted).
-- A mirror without the facts (built by the branch before them) is compacted once.
SELECT coalesce(max(value::BIGINT) FILTER (WHERE key = 'day_total_rows_appended'), 0)
       > :share * coalesce(max(value::BIGINT) FILTER (WHERE key = 'day_total_rows_compacted'), 0)
  FROM mirror_meta
 WHERE key IN ('day_total_rows_appended', 'day_total_rows_compacted');

-- name: compact_day_totals
-- Rewrites the keys of day_totals and day_tag_totals that have more than one row
-- (split_day_totals, split_day_tag_totals) as one row each, the sums of its rows (exact: sums of integers and decimals); a key whose rows
-- sum to no task drops out. Team and tags are the same on every row of a key
-- (merge_day_totals). The other rows stay: finding the split keys costs a grouping of the
-- key columns only (at 2M, 0.3 s of CPU against 2.2 s for writing the table again).
-- day_ttft, small, is written again whole, one row per (day, ttft) with a count.
CREATE OR REPLACE TEMP TABLE split_day_totals AS
SELECT unnest(list(rowid)) AS row_id
  FROM day_totals
 GROUP BY day, run_key, user_key, provider, model
HAVING count(*) > 1;
CREATE OR REPLACE TEMP TABLE compacted_day_totals AS
SELECT day, any_value(month_day) AS month_day, run_key, user_key, provider, model,
       any_value(team) AS team, any_value(tags) AS tags, sum(tasks) AS tasks,
       sum(cost) AS cost, sum(tokens_input) AS tokens_input,
       sum(tokens_output) AS tokens_output, sum(tokens_total) AS tokens_total,
       sum(tokens_cached_input) AS tokens_cached_input,
       sum(tokens_cache_write) AS tokens_cache_write, sum(unpriced) AS unpriced,
       sum(failed) AS failed, sum(finished) AS finished
  FROM day_totals
 WHERE rowid IN (SELECT row_id FROM split_day_totals)
 GROUP BY day, run_key, user_key, provider, model
HAVING sum(tasks) <> 0;
CREATE OR REPLACE TEMP TABLE compacted_day_ttft AS
SELECT day, ttft, sum(n) AS n
  FROM day_ttft
 GROUP BY day, ttft
HAVING sum(n) <> 0
 ORDER BY day, ttft;
DELETE FROM day_totals WHERE rowid IN (SELECT row_id FROM split_day_totals);
DELETE FROM day_ttft;
INSERT INTO day_totals SELECT * FROM compacted_day_totals ORDER BY day, run_key;
INSERT INTO day_ttft SELECT * FROM compacted_day_ttft;
DROP TABLE split_day_totals;
DROP TABLE compacted_day_totals;
DROP TABLE compacted_day_ttft;
-- The tag totals the same way, per day, run, user and tag.
CREATE OR REPLACE TEMP TABLE split_day_tag_totals AS
SELECT unnest(list(rowid)) AS row_id
  FROM day_tag_totals
 GROUP BY day, run_key, user_key, tag
HAVING count(*) > 1;
CREATE OR REPLACE TEMP TABLE compacted_day_tag_totals AS
SELECT day, any_value(month_day), run_key, user_key, tag, sum(tasks) AS tasks, sum(cost),
       sum(tokens_input), sum(tokens_output), sum(tokens_total), sum(tokens_cached_input),
       sum(tokens_cache_write), sum(unpriced)
  FROM day_tag_totals
 WHERE rowid IN (SELECT row_id FROM split_day_tag_totals)
 GROUP BY day, run_key, user_key, tag
HAVING sum(tasks) <> 0;
DELETE FROM day_tag_totals WHERE rowid IN (SELECT row_id FROM split_day_tag_totals);
INSERT INTO day_tag_totals SELECT * FROM compacted_day_tag_totals ORDER BY day, run_key;
DROP TABLE split_day_tag_totals;
DROP TABLE compacted_day_tag_totals;
{{day_totals.day_totals_compacted}};

-- name: forget_day_total_changes
DROP TABLE IF EXISTS day_total_changes;
DROP TABLE IF EXISTS day_total_rows;
DROP TABLE IF EXISTS appended_day_totals;
DROP TABLE IF EXISTS appended_day_ttft;

-- name: day_totals_of_teams
-- With propagate_teams: the rows of users whose team changed (changed_teams) take it.
UPDATE day_totals SET team = c.team
  FROM (SELECT k.key, c.team FROM changed_teams c JOIN user_keys k ON k.id = c.id) c
 WHERE day_totals.user_key = c.key;

-- name: day_totals_of_runs
-- With propagate_run_attributes: the rows of runs whose tags changed take them, and their
-- tag totals are written again.
UPDATE day_totals SET tags = c.tags
  FROM (SELECT k.key, c.tags FROM changed_runs c JOIN run_keys k ON k.id = c.id) c
 WHERE day_totals.run_key = c.key;
CREATE OR REPLACE TEMP TABLE retagged_runs AS
SELECT k.key AS run_key FROM changed_runs c JOIN run_keys k ON k.id = c.id;
{{day_totals.retag_runs}};

-- name: retag_runs
-- The tag totals of the runs in retagged_runs (their tags changed) written again from their
-- rows of day_totals (a key's rows may be several), one row per day, user and tag.
DELETE FROM day_tag_totals WHERE run_key IN (SELECT run_key FROM retagged_runs);
INSERT INTO day_tag_totals
WITH tagged_source AS (
    SELECT * FROM day_totals WHERE run_key IN (SELECT run_key FROM retagged_runs)
)
{{day_totals.tag_totals}};
DROP TABLE retagged_runs;
