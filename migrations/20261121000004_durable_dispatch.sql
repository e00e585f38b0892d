-- Check runs become durable jobs: an explicit state machine, a deadline, bounded retries with
-- backoff, a lease while an attempt is in flight, and an idempotency key per job.
-- Runs with no agent (agent_id NULL and runner 'server') are run by the server itself.

ALTER TABLE check_runs
    -- Who runs the check: an enrolled agent, or the server as a third vantage point.
    ADD COLUMN runner text NOT NULL DEFAULT 'agent' CHECK (runner IN ('agent', 'server')),
    -- Sent with every attempt; an agent that has seen it answers with its earlier result.
    ADD COLUMN idempotency_key uuid,
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    -- No attempt starts after this; a run still unfinished then ends 'timed_out'.
    ADD COLUMN deadline timestamptz,
    -- When the next attempt may start (backoff after a failed one).
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- While an attempt is in flight: when it counts as lost (its server died) and is retried.
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN last_error text,
    -- Insertion order: the order a case's checks are shown in.
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

UPDATE check_runs SET idempotency_key = id, deadline = created_at + interval '2 minutes';
ALTER TABLE check_runs
    ALTER COLUMN idempotency_key SET NOT NULL,
    ALTER COLUMN deadline SET NOT NULL,
    ADD CONSTRAINT check_runs_idempotency_key_key UNIQUE (idempotency_key);

DROP INDEX check_runs_unfinished_idx;
CREATE INDEX check_runs_claimable_idx ON check_runs (next_attempt_at) WHERE status = 'queued';
CREATE INDEX check_runs_in_flight_idx ON check_runs (lease_until) WHERE status IN ('sent', 'running');

-- Attempts in flight when this migration runs belong to a server that is gone.
UPDATE check_runs SET status = 'queued', lease_until = NULL WHERE status = 'running';
