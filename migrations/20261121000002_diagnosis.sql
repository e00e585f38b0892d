-- RDP Doctor: diagnosis sessions tied to cases, their history, and what closed sessions taught
-- the engine (learned counts and per-article outcomes).
-- Never edit a migration that has landed: add a new one.

CREATE TYPE diagnosis_status AS ENUM ('open', 'closed');

CREATE TABLE diagnosis_sessions (
    id              uuid PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    -- The engine's session (engine::Session) as JSON: the authoritative evidence, read back
    -- against the model the server runs now.
    session         jsonb NOT NULL,
    -- Seeds the session's article exploration; the same number is inside `session`. Below 2^53
    -- so that it survives JavaScript clients.
    seed            bigint NOT NULL CHECK (seed >= 0 AND seed < 9007199254740992),
    status          diagnosis_status NOT NULL DEFAULT 'open',
    -- `model_version` of the knowledge model the session was started with.
    model_version   text NOT NULL,
    -- The cause a technician confirmed at close; NULL for an open or an uncertain close.
    confirmed_cause text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    CONSTRAINT diagnosis_sessions_closed_at_check CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

-- At most one open session per case: starting another while one is open is a conflict.
CREATE UNIQUE INDEX diagnosis_sessions_one_open_per_case
    ON diagnosis_sessions (case_id) WHERE status = 'open';
CREATE INDEX diagnosis_sessions_case_id_idx ON diagnosis_sessions (case_id);

CREATE TYPE diagnosis_event_kind AS ENUM ('started', 'answer', 'check', 'fix', 'articles', 'closed');

-- One row per accepted action, oldest first by id: the helpdesk's history of a session. Refused
-- actions are not recorded (they change nothing).
CREATE TABLE diagnosis_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id      uuid NOT NULL REFERENCES diagnosis_sessions (id) ON DELETE CASCADE,
    kind            diagnosis_event_kind NOT NULL,
    -- The question, check or fix id; the confirmed cause for `closed`; NULL otherwise.
    subject         text,
    -- What was recorded, e.g. {"answer": "0x904", "recorded": "0x904"}.
    detail          jsonb NOT NULL,
    -- The most likely cause and its probability after the action.
    top_cause       text NOT NULL,
    top_probability double precision NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX diagnosis_events_session_id_idx ON diagnosis_events (session_id, id);

-- Learned counts (engine::LearnedCounts), as normalized rows of weights rather than one JSON
-- document per model version:
--  * closing a session only ever adds weight, so each close is an additive upsert
--    (ON CONFLICT DO UPDATE SET weight = weight + EXCLUDED.weight): no read-modify-write of a
--    shared document, and concurrent closes do not queue on one row;
--  * forgetting (LearnedCounts::decay) is a single UPDATE ... SET weight = weight * f;
--  * the helpdesk can query them in SQL (the article ranking is computed from them).
-- They are not keyed by model version: ids are stable across versions (docs/MODEL-FORMAT.md),
-- the counts describe real cases rather than a model, and Model::with_learned ignores ids a
-- model does not have, so an edited model goes on learning from every case so far. Weights are
-- fractional because an uncertain close spreads one case over the causes by their posterior.

-- Cause id → weight of closed cases.
CREATE TABLE learned_cause_counts (
    cause_id    text PRIMARY KEY,
    weight      double precision NOT NULL CHECK (weight >= 0)
);

-- Answers (source 'question') and check outcomes (source 'check') per cause.
CREATE TABLE learned_observation_counts (
    source      text NOT NULL CHECK (source IN ('question', 'check')),
    item_id     text NOT NULL,
    cause_id    text NOT NULL,
    value_id    text NOT NULL,
    weight      double precision NOT NULL CHECK (weight >= 0),
    PRIMARY KEY (source, item_id, cause_id, value_id)
);

-- How often each check ran and could not (its learned `fails_to_run`).
CREATE TABLE learned_check_runs (
    check_id    text PRIMARY KEY,
    ran         double precision NOT NULL CHECK (ran >= 0),
    not_run     double precision NOT NULL CHECK (not_run >= 0)
);

-- Fix outcomes per cause.
CREATE TABLE learned_fix_outcomes (
    fix_id      text NOT NULL,
    cause_id    text NOT NULL,
    resolved    double precision NOT NULL CHECK (resolved >= 0),
    failed      double precision NOT NULL CHECK (failed >= 0),
    PRIMARY KEY (fix_id, cause_id)
);

-- Article outcomes per cause, after cascade attribution: the engine's Beta counts for article
-- ranking, and the helpdesk's static ranking by Wilson lower bound.
CREATE TABLE article_outcomes (
    article_id  text NOT NULL,
    cause_id    text NOT NULL,
    resolved    double precision NOT NULL CHECK (resolved >= 0),
    failed      double precision NOT NULL CHECK (failed >= 0),
    PRIMARY KEY (article_id, cause_id)
);

-- Lower bound of the 95% Wilson score interval (z = 1.96) for `successes` out of `trials`; 0
-- without trials. The same formula as engine::articles::wilson_lower_bound:
--   (p + z²/2n - z·√(p(1-p)/n + z²/4n²)) / (1 + z²/n),  p = s/n,  z² = 3.8416.
CREATE FUNCTION wilson_lower_bound(successes double precision, trials double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    p double precision;
BEGIN
    IF trials <= 0 THEN
        RETURN 0;
    END IF;
    p := successes / trials;
    RETURN GREATEST(0, (p + 1.9208 / trials
                        - 1.96 * sqrt(GREATEST(0, p * (1 - p) / trials + 0.9604 / (trials * trials))))
                       / (1 + 3.8416 / trials));
END
$$;
