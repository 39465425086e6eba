-- whatif.sql: the token mix the what-if pricing reads (queries/whatif.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- {{tier}} is the tier expression of queries/whatif.tier_sql (integers from genai-prices).

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
  FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}
 GROUP BY ALL
 ORDER BY provider NULLS LAST, model NULLS LAST, tier;
