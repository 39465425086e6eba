-- The token mix the what-if pricing reads (queries/whatif.py). Values are bound (:name);
-- {{name}} is filled only with the fragments of engine.sql (task_filter, tasks_source) or
-- with the tier expression of queries/whatif.tier_sql (integers from genai-prices), never
-- with user text.

-- name: token_mix
-- Token mix per provider and model, split by the target's price tier: provider, model,
-- tier (how many of the target's tier starts lie below tokens_input), tasks, tokens_input,
-- tokens_output, tokens_cached_input (capped at tokens_input, as the pricing does),
-- actual_cost (USD).
SELECT provider, model,
       {{tier}} AS tier,
       count(*) AS tasks,
       sum(tokens_input)::BIGINT AS tokens_input,
       sum(tokens_output)::BIGINT AS tokens_output,
       sum(least(tokens_cached_input, tokens_input))::BIGINT AS tokens_cached_input,
       coalesce(sum(cost), 0) AS actual_cost
  FROM {{tasks_source}} WHERE {{task_filter}}
 GROUP BY ALL
 ORDER BY provider NULLS LAST, model NULLS LAST, tier;
