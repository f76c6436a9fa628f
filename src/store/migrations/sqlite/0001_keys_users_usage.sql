-- Users, keys, usage records and their hourly totals.
-- Times are Unix milliseconds (UTC); the hourly table keys on the hour's start in seconds.

-- One row: bumped by every change to users or keys, so a running gateway can see that another
-- process (the CLI) changed something with one cheap read.
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO meta (id, generation) VALUES (1, 0);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    created INTEGER NOT NULL
);

CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_name TEXT,
    prefix TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    last_used INTEGER,
    expires INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    revoked INTEGER,
    models TEXT NOT NULL DEFAULT '[]',
    rate_limit INTEGER,
    burst INTEGER,
    max_concurrent INTEGER,
    admin INTEGER NOT NULL DEFAULT 0,
    daily_token_quota INTEGER,
    monthly_token_quota INTEGER,
    hard_quota INTEGER NOT NULL DEFAULT 0
);
-- A name is unique among the keys that still work; a revoked key's name may be reused.
CREATE UNIQUE INDEX keys_live_name ON keys (name) WHERE revoked IS NULL;

CREATE TABLE usage (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    key_id TEXT,
    key_name TEXT NOT NULL,
    user_name TEXT,
    model TEXT,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    error TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_ms REAL NOT NULL,
    upstream_ms REAL,
    ttft_ms REAL,
    load_ms REAL
);
CREATE INDEX usage_at ON usage (at);

CREATE TABLE usage_hourly (
    hour INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_ms REAL NOT NULL,
    PRIMARY KEY (hour, key_id, key_name, user_name, model, route)
);
