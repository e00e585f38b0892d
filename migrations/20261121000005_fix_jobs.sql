-- Fixes join checks in the one durable queue: `check_runs` becomes `jobs`, each a check or a
-- fix, run by the same dispatcher with the same states, leases, retries and idempotency key
-- (which the agent honours: a retried fix is applied once).
-- Downgrade fixes need an approval from a helpdesk account; helpdesk accounts authenticate
-- with a token whose SHA-256 alone is stored.

ALTER TABLE check_runs RENAME TO jobs;
ALTER TYPE check_run_status RENAME TO job_status;
-- The catalogue id of the check (`tcp-connect`) or of the fix (`xrdp-start`).
ALTER TABLE jobs RENAME COLUMN check_id TO catalogue_id;

ALTER TABLE jobs
    ADD COLUMN kind text NOT NULL DEFAULT 'check' CHECK (kind IN ('check', 'fix')),
    -- A fix's action id in the agent's journal, once the agent answered: the journal's later
    -- news about it (rolled back, reverted at expiry) is matched by it.
    ADD COLUMN fix_action_id text,
    -- Who asked for a fix: 'employee' (from the portal) or a helpdesk account's name.
    ADD COLUMN requested_by text;

CREATE UNIQUE INDEX jobs_fix_action_idx ON jobs (agent_id, fix_action_id)
    WHERE fix_action_id IS NOT NULL;

CREATE TABLE helpdesk_accounts (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    -- SHA-256 of the token, hex. The token is shown once and never stored.
    token_hash  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT helpdesk_accounts_name_key UNIQUE (name),
    CONSTRAINT helpdesk_accounts_token_hash_key UNIQUE (token_hash)
);

-- A helpdesk account's approval of one downgrade, on one agent, for one case, until a time.
-- `token` is the server-signed approval the agent verifies; it grants nothing by itself
-- (only the server's signed requests make an agent act), so it is kept to be sent.
CREATE TABLE fix_approvals (
    id          uuid PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    agent_id    uuid NOT NULL REFERENCES agents (id),
    fix_id      text NOT NULL,
    approved_by uuid NOT NULL REFERENCES helpdesk_accounts (id),
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > issued_at),
    token       text NOT NULL,
    -- The fix job that used it: an approval is good for one job.
    used_by     uuid REFERENCES jobs (id)
);

CREATE INDEX fix_approvals_case_idx ON fix_approvals (case_id);

ALTER TABLE jobs ADD COLUMN approval_id uuid REFERENCES fix_approvals (id);

-- The newest change in an agent's fix journal, as its heartbeats report it, and the newest
-- this server has read: when the first is ahead, the server reads the journal.
ALTER TABLE agents
    ADD COLUMN journal_changed_at bigint,
    ADD COLUMN journal_read_at bigint;
