-- +goose Up
-- Message ids keyed by the client's own time for the event (client_time,
-- microseconds) ahead of the hash, so that ids go in, and are pruned, in
-- the order events happen: a batch writes near the end of the index, not
-- one page per event anywhere in a table as large as the deduplication
-- window, and pruning drops whole ranges. A retry resends the same client
-- time, so its key is the same. client_time is 0 when the client sent no
-- time. The ids recorded before (keyed by hash alone) stay where they are,
-- renamed message_ids_legacy: claims look them up too, and pruning empties
-- it, by when they were received.
ALTER TABLE message_ids RENAME TO message_ids_legacy;
ALTER TABLE message_ids_legacy RENAME CONSTRAINT message_ids_pkey TO message_ids_legacy_pkey;
ALTER INDEX message_ids_received_at RENAME TO message_ids_legacy_received_at;
CREATE TABLE message_ids (
    client_time  BIGINT NOT NULL,
    source_id    TEXT NOT NULL,
    message_hash BYTEA NOT NULL,
    PRIMARY KEY (client_time, source_id, message_hash)
);
-- The ids whose client time does not say when they may be forgotten (none
-- sent, or more than an hour off the time they were received): kept until
-- received_at leaves the window. Pruning by client time skips them.
CREATE TABLE message_ids_expiring (
    client_time  BIGINT NOT NULL,
    source_id    TEXT NOT NULL,
    message_hash BYTEA NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (client_time, source_id, message_hash)
);
CREATE INDEX message_ids_expiring_received_at ON message_ids_expiring (received_at);

-- +goose Down
-- No claim may commit between the copy and the drop.
LOCK TABLE message_ids, message_ids_expiring IN SHARE ROW EXCLUSIVE MODE;
-- An id not listed was received within an hour of its client time: taking
-- that hour later errs on the side of remembering it.
INSERT INTO message_ids_legacy (source_id, message_hash, received_at)
    SELECT m.source_id, m.message_hash, max(coalesce(e.received_at, m.client_time + 3600000000))
    FROM message_ids m LEFT JOIN message_ids_expiring e
        ON e.client_time = m.client_time AND e.source_id = m.source_id AND e.message_hash = m.message_hash
    WHERE true
    GROUP BY m.source_id, m.message_hash
    ON CONFLICT (source_id, message_hash) DO NOTHING;
DROP TABLE message_ids_expiring;
DROP TABLE message_ids;
ALTER TABLE message_ids_legacy RENAME TO message_ids;
ALTER TABLE message_ids RENAME CONSTRAINT message_ids_legacy_pkey TO message_ids_pkey;
ALTER INDEX message_ids_legacy_received_at RENAME TO message_ids_received_at;
