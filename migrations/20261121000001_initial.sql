-- RDP Doctor: enrollment, agents, cases and the checks run for them.
-- Never edit a migration that has landed: add a new one.

CREATE TABLE enrollment_tokens (
    id          uuid PRIMARY KEY,
    -- SHA-256 of the token, hex. The token itself is shown once and never stored.
    token_hash  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    max_uses    integer NOT NULL CHECK (max_uses > 0),
    uses        integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    CONSTRAINT enrollment_tokens_token_hash_key UNIQUE (token_hash)
);

CREATE TABLE agents (
    id              uuid PRIMARY KEY,
    -- Ed25519 public key, base64; it verifies every request and reply of this agent.
    public_key      text NOT NULL,
    hostname        text NOT NULL,
    os              text NOT NULL,
    agent_version   text NOT NULL,
    listen_url      text,
    enrolled_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz,
    enrolled_with   uuid NOT NULL REFERENCES enrollment_tokens (id),
    CONSTRAINT agents_public_key_key UNIQUE (public_key)
);

CREATE TABLE cases (
    id              uuid PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The codes the Remote Desktop dialog showed, when the employee gave them.
    error_code      bigint CHECK (error_code >= 0),
    extended_code   bigint CHECK (extended_code >= 0),
    target_host     text NOT NULL CHECK (length(target_host) BETWEEN 1 AND 253),
    target_port     integer NOT NULL CHECK (target_port BETWEEN 1 AND 65535)
);

CREATE TYPE check_run_status AS ENUM (
    'queued', 'running', 'succeeded', 'failed', 'agent_offline', 'no_agent'
);

CREATE TABLE check_runs (
    id              uuid PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    agent_id        uuid REFERENCES agents (id),
    check_id        text NOT NULL,
    -- The typed check request (agent_client::wire::CheckSpec) sent to the agent.
    spec            jsonb NOT NULL,
    status          check_run_status NOT NULL DEFAULT 'queued',
    -- The typed report (agent_client::wire::CheckReport) when the check ran.
    report          jsonb,
    -- Why there is no report, in words for the employee.
    problem         text,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);

CREATE INDEX check_runs_case_id_idx ON check_runs (case_id);
CREATE INDEX check_runs_unfinished_idx ON check_runs (created_at) WHERE status IN ('queued', 'running');
