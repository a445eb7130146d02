-- +goose Up
-- Locks profiles one after the other in the order given, each FOR UPDATE
-- or FOR SHARE, and returns whether each is live and, for one merged
-- away, the profile it was merged into. A batch that only
-- appends to a person's timeline takes the person shared, so batches
-- naming the same (often the most active) people run side by side; one
-- that merges, attaches identities or changes consent takes them
-- exclusively. One sweep in sorted order, whatever the modes, so two
-- batches never wait for each other in a cycle.
-- +goose StatementBegin
CREATE FUNCTION custos_lock_profiles(ids text[], exclusive boolean[])
RETURNS TABLE (profile_id text, live boolean, merged_into text)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        IF exclusive[i] THEN
            RETURN QUERY SELECT p.id, p.merged_into IS NULL AND p.data_key IS NOT NULL, p.merged_into
                FROM profiles p WHERE p.id = ids[i] FOR UPDATE;
        ELSE
            RETURN QUERY SELECT p.id, p.merged_into IS NULL AND p.data_key IS NOT NULL, p.merged_into
                FROM profiles p WHERE p.id = ids[i] FOR SHARE;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION custos_lock_profiles(text[], boolean[]);
