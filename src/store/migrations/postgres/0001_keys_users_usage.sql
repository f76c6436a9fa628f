-- Users, keys, usage records and their hourly totals: the same tables, columns and meanings as
-- the SQLite schema (migrations/sqlite/0001), in PostgreSQL's types.
-- Times are Unix milliseconds (UTC); the hourly table keys on the hour's start in seconds.

-- One row: bumped by every change to users or keys, so every replica (and the CLI) can see that
-- something changed with one cheap read.
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO meta (id, generation) VALUES (1, 0);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    created BIGINT NOT NULL
);

CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_name TEXT,
    prefix TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    created BIGINT NOT NULL,
    last_used BIGINT,
    expires BIGINT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    revoked BIGINT,
    models TEXT NOT NULL DEFAULT '[]',
    rate_limit BIGINT,
    burst BIGINT,
    max_concurrent BIGINT,
    admin BOOLEAN NOT NULL DEFAULT FALSE,
    daily_token_quota BIGINT,
    monthly_token_quota BIGINT,
    hard_quota BOOLEAN NOT NULL DEFAULT FALSE
);
-- A name is unique among the keys that still work; a revoked key's name may be reused.
CREATE UNIQUE INDEX keys_live_name ON keys (name) WHERE revoked IS NULL;

CREATE TABLE usage (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    key_id TEXT,
    key_name TEXT NOT NULL,
    user_name TEXT,
    model TEXT,
    route TEXT NOT NULL,
    status BIGINT NOT NULL,
    error TEXT,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    total_ms DOUBLE PRECISION NOT NULL,
    upstream_ms DOUBLE PRECISION,
    ttft_ms DOUBLE PRECISION,
    load_ms DOUBLE PRECISION
);
CREATE INDEX usage_at ON usage (at);

CREATE TABLE usage_hourly (
    hour BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    total_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, key_id, key_name, user_name, model, route)
);
