-- New states for check runs as durable jobs (a separate migration: PostgreSQL cannot use an
-- enum value in the transaction that adds it).

ALTER TYPE check_run_status ADD VALUE IF NOT EXISTS 'sent' AFTER 'queued';
ALTER TYPE check_run_status ADD VALUE IF NOT EXISTS 'timed_out';
ALTER TYPE check_run_status ADD VALUE IF NOT EXISTS 'cancelled';
