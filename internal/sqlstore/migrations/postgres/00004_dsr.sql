-- +goose Up
-- Keyed hashes of the sha256, sha1 and md5 forms of every identity, so a
-- data subject request naming a hashed identity finds its person without
-- Custos keeping or computing anyone's plaintext.
CREATE TABLE identity_hashes (
    workspace_id TEXT NOT NULL,
    hashed       BYTEA NOT NULL,
    blind        BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, hashed, blind)
);
CREATE INDEX identity_hashes_blind ON identity_hashes (workspace_id, blind);

-- Data subject requests. identities are sealed under the root key and
-- deleted when the request completes; erase_key seals the erasure notices
-- queued for destinations and is destroyed at completion too.
CREATE TABLE dsr_requests (
    workspace_id        TEXT NOT NULL,
    id                  TEXT NOT NULL,
    regulation          TEXT NOT NULL,
    type                TEXT NOT NULL,
    status              TEXT NOT NULL,
    fingerprint         TEXT NOT NULL,
    identities_sealed   BYTEA,
    identity_summary    TEXT NOT NULL,
    callback_urls       TEXT NOT NULL,
    submitted_at        BIGINT NOT NULL,
    received_at         BIGINT NOT NULL,
    expected_at         BIGINT NOT NULL,
    start_after         BIGINT NOT NULL,
    deadlines           TEXT NOT NULL,
    erase_key_sealed    BYTEA,
    results_token_hash  BYTEA,
    results_expires_at  BIGINT,
    results_count       BIGINT,
    export_sealed       BYTEA,
    outcome             TEXT NOT NULL,
    started_at          BIGINT,
    completed_at        BIGINT,
    cancelled_at        BIGINT,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX dsr_requests_status ON dsr_requests (status, start_after);
CREATE UNIQUE INDEX dsr_requests_results ON dsr_requests (results_token_hash);

-- Each destination's part in an erasure.
CREATE TABLE dsr_destinations (
    workspace_id   TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    state          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    attempts       BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, request_id, destination_id)
);

-- Status callbacks owed to the controller, one per URL and status, and
-- every attempt made.
CREATE TABLE dsr_callbacks (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    url          TEXT NOT NULL,
    status       TEXT NOT NULL,
    body         BYTEA NOT NULL,
    attempts     BIGINT NOT NULL,
    done         BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX dsr_callbacks_due ON dsr_callbacks (done, next_at);
CREATE TABLE dsr_callback_attempts (
    callback_id TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    http_status BIGINT NOT NULL,
    error       TEXT NOT NULL,
    PRIMARY KEY (callback_id, attempt)
);

-- Suppression: keyed hashes of every identity of an erased person. New
-- data carrying any of them is dropped, unless an operator lifted it.
CREATE TABLE suppressions (
    workspace_id TEXT NOT NULL,
    blind        BYTEA NOT NULL,
    request_id   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    lifted_at    BIGINT,
    lifted_by    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, blind)
);

-- The tamper-evident log: proofs of data subject requests and operators'
-- changes, each record hashing the one before.
CREATE TABLE audit_log (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    record       TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (workspace_id, kind, subject);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE suppressions;
DROP TABLE dsr_callback_attempts;
DROP TABLE dsr_callbacks;
DROP TABLE dsr_destinations;
DROP TABLE dsr_requests;
DROP TABLE identity_hashes;
