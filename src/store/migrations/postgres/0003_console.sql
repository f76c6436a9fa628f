-- The admin console: its sessions, and what its usage pages read (the same tables as SQLite's
-- 0003_console.sql; see there for what each holds). The PostgreSQL engine arrived with these
-- migrations, so no database has usage from before them: nothing to count in.

CREATE TABLE console_sessions (
    digest BYTEA PRIMARY KEY,
    key_digest BYTEA NOT NULL,
    key_name TEXT NOT NULL,
    client TEXT,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires);

CREATE TABLE usage_stats (
    period BIGINT NOT NULL,
    start BIGINT NOT NULL,
    kind BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (period, start, kind, bucket)
);

CREATE TABLE usage_daily (
    day BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    PRIMARY KEY (day, key_id, key_name, model)
);

CREATE INDEX usage_hourly_by_key ON usage_hourly
    (hour, key_id, key_name, prompt_tokens, completion_tokens, requests, errors);
CREATE INDEX usage_hourly_by_model ON usage_hourly
    (hour, model, prompt_tokens, completion_tokens, requests, errors);
