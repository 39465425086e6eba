-- Spend control (docs/spend-control.md): price books with validity windows, the price
-- behind each task's cost, an audit of re-pricings, budgets with a scope, alert rules,
-- their state and the deliveries of their events to webhooks.

-- Price overrides. A window is [valid_from, valid_to), valid_to NULL = open-ended. Prices
-- are USD per million tokens, or a flat USD per request; a rate left NULL falls back as
-- documented in ingest/price_books.py. Removed overrides stay (removed_at) for the audit.
CREATE TABLE ai_price_overrides (
    id                 bigserial PRIMARY KEY,
    provider           text NOT NULL CHECK (provider <> ''),
    model_pattern      text NOT NULL CHECK (model_pattern <> ''),
    valid_from         timestamptz NOT NULL,
    valid_to           timestamptz,
    input_per_mtok     numeric(20, 10) CHECK (input_per_mtok >= 0),
    cached_per_mtok    numeric(20, 10) CHECK (cached_per_mtok >= 0),
    cache_write_per_mtok numeric(20, 10) CHECK (cache_write_per_mtok >= 0),
    output_per_mtok    numeric(20, 10) CHECK (output_per_mtok >= 0),
    reasoning_per_mtok numeric(20, 10) CHECK (reasoning_per_mtok >= 0),
    per_request        numeric(20, 10) CHECK (per_request >= 0),
    note               text NOT NULL DEFAULT '',
    created_by         text NOT NULL DEFAULT current_user,
    created_at         timestamptz NOT NULL DEFAULT now(),
    removed_by         text,
    removed_at         timestamptz,
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK (per_request IS NOT NULL
           OR (input_per_mtok IS NOT NULL AND output_per_mtok IS NOT NULL))
);
CREATE INDEX ai_price_overrides_lookup_idx ON ai_price_overrides (provider, valid_from)
    WHERE removed_at IS NULL;

-- Two live overrides of the same provider and model pattern may not overlap in time.
-- (An exclusion constraint would need btree_gist, which not every Postgres 15 install
-- has.) The advisory lock serialises writers of one provider and pattern, so two
-- concurrent inserts cannot both pass the check.
CREATE FUNCTION ai_price_overrides_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    clash ai_price_overrides;
BEGIN
    IF NEW.removed_at IS NOT NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ai_price_overrides'),
                                  hashtext(NEW.provider || '/' || NEW.model_pattern));
    SELECT * INTO clash FROM ai_price_overrides o
     WHERE o.provider = NEW.provider AND o.model_pattern = NEW.model_pattern
       AND o.removed_at IS NULL AND o.id <> NEW.id
       AND o.valid_from < coalesce(NEW.valid_to, 'infinity')
       AND NEW.valid_from < coalesce(o.valid_to, 'infinity')
     ORDER BY o.valid_from LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'price override % % [%, %) overlaps override % [%, %); '
                        'end one window where the other starts, or remove it first',
            NEW.provider, NEW.model_pattern, NEW.valid_from, coalesce(NEW.valid_to::text, 'open'),
            clash.id, clash.valid_from, coalesce(clash.valid_to::text, 'open')
            USING ERRCODE = 'exclusion_violation', COLUMN = 'valid_from';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_price_overrides_no_overlap BEFORE INSERT OR UPDATE ON ai_price_overrides
    FOR EACH ROW EXECUTE FUNCTION ai_price_overrides_no_overlap();

-- Which price produced a task's cost: 'override:<id>' or 'genai-prices <version>'. NULL:
-- the cost was given by the caller, is unknown, or predates price books.
ALTER TABLE ai_tasks ADD COLUMN price_ref text;

-- One row per real re-pricing: who, when, which rule, how many tasks, old and new totals.
CREATE TABLE ai_reprice_audit (
    id            bigserial PRIMARY KEY,
    ran_by        text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'failed')),
    rule          jsonb NOT NULL CHECK (jsonb_typeof(rule) = 'object'),
    price_books   jsonb NOT NULL DEFAULT '{}',
    tasks_examined bigint NOT NULL DEFAULT 0,
    tasks_changed bigint NOT NULL DEFAULT 0,
    old_total     numeric(24, 10) NOT NULL DEFAULT 0,
    new_total     numeric(24, 10) NOT NULL DEFAULT 0,
    error         text
);

-- Budgets: an amount per period for a scope (all, or one team/user/model/tag/source type).
CREATE TABLE ai_budgets (
    id          bigserial PRIMARY KEY,
    scope_kind  text NOT NULL
        CHECK (scope_kind IN ('all', 'team', 'user', 'model', 'tag', 'source_type')),
    scope_value text,
    period      text NOT NULL CHECK (period IN ('month', 'week')),
    amount      numeric(20, 4) NOT NULL CHECK (amount > 0),
    created_by  text NOT NULL DEFAULT current_user,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope_kind = 'all') = (scope_value IS NULL)),
    CHECK (scope_value IS NULL OR scope_value <> '')
);
CREATE UNIQUE INDEX ai_budgets_scope_idx
    ON ai_budgets (scope_kind, coalesce(scope_value, ''), period);

-- Alert rules. kind decides the metric and the unit of threshold:
--   budget_spend, budget_forecast: fraction of the budget (0.8 = 80%); scope = the budget's
--   ttft_p95, total_time_p95: milliseconds over the last window_minutes, in the scope
--   failure_rate: failed / finished tasks (0..1) over the last window_minutes, in the scope
CREATE TABLE ai_alert_rules (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name <> ''),
    kind           text NOT NULL CHECK (kind IN ('budget_spend', 'budget_forecast',
                                                  'ttft_p95', 'total_time_p95', 'failure_rate')),
    threshold      numeric(20, 6) NOT NULL CHECK (threshold >= 0),
    budget_id      bigint REFERENCES ai_budgets (id) ON DELETE CASCADE,
    scope_kind     text NOT NULL DEFAULT 'all'
        CHECK (scope_kind IN ('all', 'team', 'user', 'model', 'tag', 'source_type')),
    scope_value    text,
    window_minutes integer NOT NULL DEFAULT 60 CHECK (window_minutes > 0),
    min_tasks      integer NOT NULL DEFAULT 1 CHECK (min_tasks >= 1),
    webhook_url    text,
    enabled        boolean NOT NULL DEFAULT true,
    created_by     text NOT NULL DEFAULT current_user,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind IN ('budget_spend', 'budget_forecast')) = (budget_id IS NOT NULL)),
    CHECK ((scope_kind = 'all') = (scope_value IS NULL)),
    CHECK (webhook_url IS NULL OR webhook_url ~ '^https?://')
);

-- The current state of each rule (one row, locked while a check decides a transition).
CREATE TABLE ai_alert_state (
    rule_id      bigint PRIMARY KEY REFERENCES ai_alert_rules (id) ON DELETE CASCADE,
    firing       boolean NOT NULL DEFAULT false,
    since        timestamptz,
    value        numeric(24, 6),
    evaluated_at timestamptz
);

-- Every transition (firing or resolved) is one event, delivered once to the rule's
-- webhook: (rule_id, seq) makes the transition unique; delivery is retried up to a bound
-- and then recorded as failed.
CREATE TABLE ai_alert_events (
    id           bigserial PRIMARY KEY,
    rule_id      bigint NOT NULL REFERENCES ai_alert_rules (id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    event        text NOT NULL CHECK (event IN ('firing', 'resolved')),
    value        numeric(24, 6),
    threshold    numeric(20, 6) NOT NULL,
    message      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivery     text NOT NULL DEFAULT 'pending'
        CHECK (delivery IN ('pending', 'delivered', 'failed', 'no_webhook')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    delivered_at timestamptz,
    UNIQUE (rule_id, seq)
);
CREATE INDEX ai_alert_events_pending_idx ON ai_alert_events (id) WHERE delivery = 'pending';
