-- The token mix the what-if pricing reads (queries/whatif.py). Values are bound (:name); {{name}} is filled only with the
-- fragments of engine.sql (task_filter, tasks_source) or with an allow-listed expression of
-- queries/engine.py (period, group, metric), never with user text.

-- name: token_mix
-- Token mix per provider and model, split by the target's price tier: provider, model,
-- tier (number of :thresholds below tokens_input), tasks, tokens_input, tokens_output,
-- tokens_cached_input (capped at tokens_input, as the pricing does), actual_cost (USD).
SELECT provider, model,
       len(list_filter(:thresholds::BIGINT[], lambda t: tokens_input > t)) AS tier,
       count(*) AS tasks,
       sum(tokens_input)::BIGINT AS tokens_input,
       sum(tokens_output)::BIGINT AS tokens_output,
       sum(least(tokens_cached_input, tokens_input))::BIGINT AS tokens_cached_input,
       coalesce(sum(cost), 0) AS actual_cost
  FROM {{tasks_source}} WHERE {{task_filter}}
 GROUP BY ALL
 ORDER BY provider NULLS LAST, model NULLS LAST, tier;
