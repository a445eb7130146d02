-- +goose Up
-- Destinations: connections to tools. config holds the type-specific
-- settings, filters, minimisation and consent rule as JSON; credentials are
-- sealed under the root key and never returned.
CREATE TABLE destinations (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces (id),
    name               TEXT NOT NULL,
    type               TEXT NOT NULL,
    enabled            BIGINT NOT NULL,
    endpoint           TEXT NOT NULL,
    credentials_sealed BYTEA,
    config             TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX destinations_workspace ON destinations (workspace_id);

-- Each destination's outcome for each event and consent change: the
-- person's activity view reads it.
CREATE TABLE deliveries (
    destination_id TEXT NOT NULL,
    delivery_key   TEXT NOT NULL,
    workspace_id   TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    kind           TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    attempts       BIGINT NOT NULL,
    last_error     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    delivered_at   BIGINT,
    PRIMARY KEY (destination_id, delivery_key)
);
CREATE INDEX deliveries_profile ON deliveries (profile_id, message_id);

-- Deliveries that failed for good, kept (sealed under the person's key)
-- for inspection and replay.
CREATE TABLE dead_letters (
    id             TEXT PRIMARY KEY,
    destination_id TEXT NOT NULL,
    workspace_id   TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    delivery_key   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    payload        BYTEA NOT NULL,
    last_error     TEXT NOT NULL,
    attempts       BIGINT NOT NULL,
    first_attempt  BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX dead_letters_destination ON dead_letters (destination_id, created_at);
CREATE INDEX dead_letters_profile ON dead_letters (profile_id);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE deliveries;
DROP TABLE destinations;
