-- Where requests come from, as the server sees them (the client behind trusted proxies): an
-- agent's heartbeats, and the employee's browser when a case was opened. The employee's own
-- agent is the one whose heartbeats come from the address the case came from.

ALTER TABLE agents ADD COLUMN seen_from inet;
ALTER TABLE cases ADD COLUMN reported_from inet;

CREATE INDEX agents_seen_from_idx ON agents (seen_from);
