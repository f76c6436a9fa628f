-- The admin console: its sessions, and what its usage pages read.

-- One row per console session. Only the digest of the session token is stored (the token is in
-- the browser's cookie); `key_digest` names the admin key it was opened with, so a session ends
-- as soon as that key is disabled, revoked, expires or stops being an admin key. A row is
-- deleted at logout; expired rows are deleted at the next login.
CREATE TABLE console_sessions (
    digest BLOB PRIMARY KEY,
    key_digest BLOB NOT NULL,
    key_name TEXT NOT NULL,
    client TEXT,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires);

-- Requests by status, latency and time to first token, per hour and per day: the usage page's
-- percentiles and status counts over a month read a few thousand of these rows instead of
-- every record. `kind`: 0 status (bucket = the status, 1 = a stream that failed after its 200),
-- 1 total time, 2 time to first token; times are bucketed in microseconds to two significant
-- digits (1234 us -> 1200), so a percentile read back is within 5 % of the exact one.
CREATE TABLE usage_stats (
    period INTEGER NOT NULL,
    start INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (period, start, kind, bucket)
) WITHOUT ROWID;

-- The records already kept, counted in.
INSERT INTO usage_stats (period, start, kind, bucket, count)
SELECT p.period, (u.at / (p.period * 1000)) * p.period, 0,
       CASE WHEN u.error IS NOT NULL AND u.status < 400 THEN 1 ELSE u.status END, COUNT(*)
FROM usage u, (SELECT 3600 AS period UNION ALL SELECT 86400) p
GROUP BY 1, 2, 4;

INSERT INTO usage_stats (period, start, kind, bucket, count)
SELECT period, start, kind,
       CASE WHEN x < 100 THEN x
            ELSE CAST(substr(CAST(x AS TEXT), 1, 2) AS INTEGER)
                 * CAST('1' || substr('0000000000000000', 1, length(CAST(x AS TEXT)) - 2) AS INTEGER)
       END AS bucket,
       COUNT(*)
FROM (
    SELECT p.period, (u.at / (p.period * 1000)) * p.period AS start, 1 AS kind,
           CAST(u.total_ms * 1000 AS INTEGER) AS x
    FROM usage u, (SELECT 3600 AS period UNION ALL SELECT 86400) p
    UNION ALL
    SELECT p.period, (u.at / (p.period * 1000)) * p.period, 2, CAST(u.ttft_ms * 1000 AS INTEGER)
    FROM usage u, (SELECT 3600 AS period UNION ALL SELECT 86400) p
    WHERE u.ttft_ms IS NOT NULL
)
GROUP BY period, start, kind, bucket;

-- The hourly totals summed per UTC day, by key and model: the usage page's ranges of several
-- days read a few thousand of these rows instead of a row per hour, key, model and route.
-- Kept by the usage writer beside the hourly totals (and like them, beyond the retention).
CREATE TABLE usage_daily (
    day INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    PRIMARY KEY (day, key_id, key_name, model)
) WITHOUT ROWID;

INSERT INTO usage_daily (day, key_id, key_name, model, requests, errors, prompt_tokens, completion_tokens)
SELECT (hour / 86400) * 86400, key_id, key_name, model, SUM(requests), SUM(errors),
       SUM(prompt_tokens), SUM(completion_tokens)
FROM usage_hourly GROUP BY 1, 2, 3, 4;

-- Tokens over time by key and by model (up to two days), from the hourly totals without
-- reading the table itself.
CREATE INDEX usage_hourly_by_key ON usage_hourly
    (hour, key_id, key_name, prompt_tokens, completion_tokens, requests, errors);
CREATE INDEX usage_hourly_by_model ON usage_hourly
    (hour, model, prompt_tokens, completion_tokens, requests, errors);
