-- Stored responses of `POST /v1/responses` (`store: true`), for `GET` / `DELETE
-- /v1/responses/{id}` and `previous_response_id`. Times are Unix milliseconds (UTC).
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    -- Who made it, and the only caller who may read or delete it: a stored key's id, or
    -- `config:<name>` for a key from the configuration.
    owner TEXT NOT NULL,
    created BIGINT NOT NULL,
    -- Past this it is not answered any more, and the sweep deletes it.
    expires BIGINT NOT NULL,
    -- The conversation before this response's output: Responses input items, a JSON array.
    input TEXT NOT NULL,
    -- The response object exactly as the create returned it (a stream's as assembled), JSON.
    response TEXT NOT NULL
);
CREATE INDEX responses_expires ON responses (expires);
