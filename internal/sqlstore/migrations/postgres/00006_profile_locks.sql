-- +goose Up
-- Locks profiles one after the other in the order given, each FOR UPDATE
-- or FOR SHARE, and returns whether each is live and, for one merged away,
-- the profile it was merged into; past the first merged away it only
-- reads. A batch that only appends to a person's timeline takes the person
-- shared, so batches naming the same (often the most active) people run
-- side by side; one that merges, attaches identities or changes consent
-- takes them exclusively. One sweep in sorted order, whatever the modes,
-- so two batches never wait for each other in a cycle.
-- +goose StatementBegin
CREATE FUNCTION custos_lock_profiles(ids text[], exclusive boolean[])
RETURNS TABLE (profile_id text, live boolean, merged_into text)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    r record;
    stopped boolean := false;
BEGIN
    FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        IF stopped THEN
            SELECT p.id, p.merged_into IS NULL AND p.data_key IS NOT NULL AS live, p.merged_into
                INTO r FROM profiles p WHERE p.id = ids[i];
        ELSIF exclusive[i] THEN
            SELECT p.id, p.merged_into IS NULL AND p.data_key IS NOT NULL AS live, p.merged_into
                INTO r FROM profiles p WHERE p.id = ids[i] FOR UPDATE;
        ELSE
            SELECT p.id, p.merged_into IS NULL AND p.data_key IS NOT NULL AS live, p.merged_into
                INTO r FROM profiles p WHERE p.id = ids[i] FOR SHARE;
        END IF;
        IF FOUND THEN
            profile_id := r.id;
            live := r.live;
            merged_into := r.merged_into;
            RETURN NEXT;
            -- Past a profile merged away the caller reads the owners again
            -- and locks anew, so the rest is only read: waiting for the
            -- next lock while holding this one could deadlock with the
            -- merge that re-points it.
            IF r.merged_into IS NOT NULL THEN
                stopped := true;
            END IF;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION custos_lock_profiles(text[], boolean[]);
