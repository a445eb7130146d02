-- +goose Up
-- Nothing: PostgreSQL's migration 6 adds a function that locks profiles in
-- mixed modes; SQLite runs one writer at a time and locks nothing. Kept so
-- both databases count the same versions.
SELECT 1;

-- +goose Down
SELECT 1;
