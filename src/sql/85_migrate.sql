-- 85_migrate: converting an existing plaintext column to an encrypted type in place (issue 11).
--
-- vault.seal_in(value, vault) seals plaintext under a vault named per call (write level on it
-- needed; src/type/seal_in.cpp). vault.migrate_column is a procedure that commits between
-- batches and is restartable:
--   1. a shadow column "vv_migrating_<column>" of the encrypted type is added, with a trigger
--      that clears a row's shadow value when its source value is updated meanwhile;
--   2. batches (ranges of heap blocks, then whatever was inserted or updated since) fill the
--      shadow column, one COMMIT and one NOTICE each; the source column is never written;
--   3. one last transaction locks the table (ACCESS EXCLUSIVE), converts what is still missing,
--      drops the trigger and the source column (its indexes go with it), renames the shadow
--      column, keeps NOT NULL, and recreates pgvector's hnsw index as vault_hnsw if asked.
-- A failure at any point leaves the source column as it was; calling again resumes at step 2
-- with the rows already converted. Everything runs with the caller's rights (SECURITY INVOKER;
-- row-level security applies), every name is schema-qualified or quoted with %I, and only the
-- table's owner (a member of the owning role) may convert it. No SET clause (a procedure with
-- one may not COMMIT), hence OPERATOR(pg_catalog.=) and pg_catalog-qualified functions.
CREATE FUNCTION vault.seal_in(value real[], vault text) RETURNS evector
    AS 'MODULE_PATHNAME', 'vault_seal_in' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION vault.seal_in(value text, vault text) RETURNS etext
    AS 'MODULE_PATHNAME', 'vault_seal_in' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION vault.seal_in(value jsonb, vault text) RETURNS ejsonb
    AS 'MODULE_PATHNAME', 'vault_seal_in' LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION vault.seal_in(real[], text) IS 'the array sealed as an evector under the named vault (write level on it needed)';
COMMENT ON FUNCTION vault.seal_in(text, text) IS 'the text sealed as an etext under the named vault (write level on it needed)';
COMMENT ON FUNCTION vault.seal_in(jsonb, text) IS 'the jsonb sealed as an ejsonb under the named vault (write level on it needed)';

-- Trigger of a running migration: a row whose source value changes gets its shadow value
-- cleared (TG_ARGV[0] names the shadow column), so the next batch converts it again.
-- jsonb_populate_record copies the other fields as they are (no output function, no decryption).
CREATE FUNCTION vault._migrate_reset() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object(TG_ARGV[0], NULL));
END
$$;

-- The indexes on column attnum of tbl, each with the vault_hnsw statement that replaces it
-- (pgvector hnsw with an L2, inner-product, cosine or L1 opclass of vector or halfvec: evector_*
-- or ehalfvec_* ops) or NULL (any other index, sparsevec's hnsw too: esparsevec has no vault_hnsw
-- opclass).
CREATE FUNCTION vault._migrate_indexes(tbl regclass, attnum smallint)
RETURNS TABLE (index regclass, amname name, vault_hnsw pg_catalog.text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.indexrelid::pg_catalog.regclass, am.amname,
           CASE WHEN am.amname OPERATOR(pg_catalog.=) 'hnsw' AND i.indnatts OPERATOR(pg_catalog.=) 1
                     AND op.opcname OPERATOR(pg_catalog.=) ANY (ARRAY['vector_l2_ops', 'vector_ip_ops', 'vector_cosine_ops', 'vector_l1_ops',
                                                             'halfvec_l2_ops', 'halfvec_ip_ops', 'halfvec_cosine_ops', 'halfvec_l1_ops']::pg_catalog.name[])
                THEN pg_catalog.format('CREATE INDEX %I ON %s USING vault_hnsw (%I @extschema@.%I)%s', c.relname, $1,
                                       a.attname, 'e' OPERATOR(pg_catalog.||) op.opcname,
                                       CASE WHEN c.reloptions IS NULL THEN ''
                                            ELSE pg_catalog.format(' WITH (%s)', pg_catalog.array_to_string(c.reloptions, ', ')) END)
           END
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.=) $2
    LEFT JOIN pg_catalog.pg_opclass op ON op.oid OPERATOR(pg_catalog.=) i.indclass[0]
    WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND $2 OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])
    ORDER BY c.relname
$$;

-- A procedure that COMMITs cannot pin search_path with a SET clause, so everything in it is
-- schema-qualified, variable types included (pg_catalog.name: a planted domain "name" in the
-- caller's path ran in its DECLARE block before; test/t/022_shadowing.pl).
CREATE PROCEDURE vault.migrate_column(tbl regclass, col name, vault_column name DEFAULT NULL,
                                      vault text DEFAULT NULL, batch_size integer DEFAULT 10000,
                                      rebuild_index boolean DEFAULT false,
                                      drop_indexes_first boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    rel record;
    src record;
    shadow pg_catalog.name := pg_catalog.left('vv_migrating_' OPERATOR(pg_catalog.||) col, 63);
    trig pg_catalog.name := pg_catalog.left('vv_migrate_' OPERATOR(pg_catalog.||) col, 63);
    target pg_catalog.text;     -- evector | ehalfvec | esparsevec | etext | ejsonb
    target_type pg_catalog.text;
    seal_fn pg_catalog.text := 'vault.seal_in';  -- the sealing function (seal_in_ehalfvec, ...)
    arg pg_catalog.text;        -- the plaintext argument of seal_fn
    vault_arg pg_catalog.text;  -- the vault argument
    shadow_type pg_catalog.text;
    lo integer;
    hi integer;
    nblocks bigint;
    step bigint;
    b bigint := 0;
    n bigint;
    total bigint;
    done bigint := 0;
    convert_sql pg_catalog.text;
    idx record;
    rebuild pg_catalog.text[] := '{}';
    stmt pg_catalog.text;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023',
            HINT = 'Pass batch_size => 10000 (rows per committed batch).';
    END IF;
    SELECT c.relowner, c.relkind, c.relpersistence INTO rel FROM pg_catalog.pg_class c
    WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    IF rel.relkind IS NULL OR rel.relkind OPERATOR(pg_catalog.<>) 'r' THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809',
            HINT = 'vault.migrate_column converts a column of a plain table (for a partitioned table, call it per partition).';
    END IF;
    IF NOT pg_catalog.pg_has_role(CURRENT_USER, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to migrate its columns', tbl USING ERRCODE = '42501',
            HINT = 'Ask the table''s owner to run vault.migrate_column.';
    END IF;
    IF vault_column IS NOT NULL AND vault IS NOT NULL THEN
        RAISE EXCEPTION 'vault_column and vault are exclusive' USING ERRCODE = '22023',
            HINT = 'Name a column that holds each row''s vault, or one vault for every row.';
    END IF;
    IF vault_column IS NULL THEN
        vault := coalesce(vault, NULLIF(pg_catalog.current_setting('vector_vault.vault', true), ''));
        IF vault IS NULL THEN
            RAISE EXCEPTION 'no vault to seal the column''s values under' USING ERRCODE = '22023',
                HINT = 'Pass vault => ''name'', or vault_column => ''column'' for a table with one vault per row, or SET vector_vault.vault.';
        END IF;
        -- Fails early (42704 / 42501) instead of in the first batch.
        PERFORM vault.seal_in(''::pg_catalog.text, vault);
        vault_arg := '$1';
    ELSE
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) vault_column
                         AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of % does not exist', vault_column, tbl USING ERRCODE = '42703',
                HINT = 'vault_column names the column that holds each row''s vault name.';
        END IF;
        vault_arg := pg_catalog.format('t.%I::pg_catalog.text', vault_column);
    END IF;

    SELECT a.attnum, a.atttypid, a.atttypmod, a.attnotnull, a.atthasdef, t.typname, t.typtype,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS shown
    INTO src FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
    WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col
      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF src.attnum IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', col, tbl USING ERRCODE = '42703',
            HINT = 'Name the plaintext column to convert (col => ''embedding'').';
    END IF;
    IF src.typname OPERATOR(pg_catalog.=) ANY (ARRAY['evector', 'ehalfvec', 'esparsevec', 'etext', 'ejsonb']::pg_catalog.name[]) THEN
        RAISE NOTICE 'column % of % is already %: nothing to do', pg_catalog.quote_ident(col), tbl, src.shown;
        RETURN;
    END IF;
    -- The source types and the plaintext each gives vault.seal_in (or seal_fn).
    IF src.typname OPERATOR(pg_catalog.=) 'vector' AND src.typtype OPERATOR(pg_catalog.=) 'b' THEN
        target := 'evector';   -- pgvector: its cast to real[]; typmod = dimensions
        arg := pg_catalog.format('t.%I::pg_catalog.float4[]', col);
        IF src.atttypmod OPERATOR(pg_catalog.>) 0 THEN
            lo := src.atttypmod;
            hi := src.atttypmod;
        END IF;
    ELSIF src.typname OPERATOR(pg_catalog.=) ANY (ARRAY['halfvec', 'sparsevec']::pg_catalog.name[])
          AND src.typtype OPERATOR(pg_catalog.=) 'b' THEN
        -- pgvector's halfvec / sparsevec, sealed as they are (binary form, no rounding); typmod =
        -- dimensions, kept
        target := 'e' OPERATOR(pg_catalog.||) src.typname;
        seal_fn := 'vault.seal_in_' OPERATOR(pg_catalog.||) target;
        arg := pg_catalog.format('t.%I', col);
        IF src.atttypmod OPERATOR(pg_catalog.>) 0 THEN
            lo := src.atttypmod;
            hi := src.atttypmod;
        END IF;
    ELSIF src.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.float4[]'::pg_catalog.regtype, 'pg_catalog.float8[]'::pg_catalog.regtype,
                           'pg_catalog.int4[]'::pg_catalog.regtype, 'pg_catalog.numeric[]'::pg_catalog.regtype]::pg_catalog.oid[]) THEN
        target := 'evector';
        arg := pg_catalog.format('t.%I::pg_catalog.float4[]', col);
    ELSIF src.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype,
                           'pg_catalog.bpchar'::pg_catalog.regtype]::pg_catalog.oid[]) THEN
        target := 'etext';
        arg := pg_catalog.format('t.%I::pg_catalog.text', col);
    ELSIF src.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.jsonb'::pg_catalog.regtype, 'pg_catalog.json'::pg_catalog.regtype]::pg_catalog.oid[]) THEN
        target := 'ejsonb';
        arg := pg_catalog.format('t.%I::pg_catalog.jsonb', col);
    ELSE
        RAISE EXCEPTION 'cannot migrate column % of type %', pg_catalog.quote_ident(col), src.shown
            USING ERRCODE = '42804',
                  HINT = 'vault.migrate_column converts vector (pgvector), real[], double precision[], integer[], numeric[] (to evector), halfvec (to ehalfvec), sparsevec (to esparsevec), text, varchar, char (to etext) and jsonb, json (to ejsonb).';
    END IF;

    -- Rows that cannot be converted, found before anything is written.
    IF vault_column IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NOT NULL AND %I IS NULL',
                                  tbl, col, vault_column) INTO n;
        IF n OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION '% rows of % have a value in % but no vault in %', n, tbl,
                pg_catalog.quote_ident(col), pg_catalog.quote_ident(vault_column)
                USING ERRCODE = '23502', HINT = 'Set their vault column (or delete them), then call again.';
        END IF;
    END IF;

    -- Step 1: the shadow column and the trigger (or those of an interrupted run).
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO shadow_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) shadow
      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF shadow_type IS NULL THEN
        IF target OPERATOR(pg_catalog.=) 'evector' AND lo IS NULL THEN
            -- Arrays: declared dimensions when every vector has the same (an index needs them).
            EXECUTE pg_catalog.format('SELECT pg_catalog.min(pg_catalog.cardinality(%1$I)), pg_catalog.max(pg_catalog.cardinality(%1$I)) '
                                      'FROM ONLY %2$s WHERE %1$I IS NOT NULL', col, tbl) INTO lo, hi;
        END IF;
        target_type := CASE WHEN lo OPERATOR(pg_catalog.=) hi AND lo OPERATOR(pg_catalog.>) 0
                            THEN pg_catalog.format('@extschema@.%s(%s)', target, lo)
                            ELSE '@extschema@.' OPERATOR(pg_catalog.||) target END;
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', tbl, shadow, target_type);
        RAISE NOTICE 'vault.migrate_column: converting % of % (%) to % in column %', pg_catalog.quote_ident(col), tbl,
            src.shown, target_type, pg_catalog.quote_ident(shadow);
    ELSIF pg_catalog.split_part(shadow_type, '(', 1) OPERATOR(pg_catalog.<>) target THEN
        RAISE EXCEPTION 'column % of % exists and is %, not %', pg_catalog.quote_ident(shadow), tbl, shadow_type, target
            USING ERRCODE = '42P16', HINT = 'Drop or rename that column, then call again.';
    ELSE
        RAISE NOTICE 'vault.migrate_column: resuming the conversion of % of % in column %', pg_catalog.quote_ident(col),
            tbl, pg_catalog.quote_ident(shadow);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl
                   AND g.tgname OPERATOR(pg_catalog.=) trig) THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER %I BEFORE UPDATE OF %I ON %s FOR EACH ROW '
                                  'WHEN ((OLD.%I)::pg_catalog.text IS DISTINCT FROM (NEW.%I)::pg_catalog.text) '
                                  'EXECUTE FUNCTION vault._migrate_reset(%L)', trig, col, tbl, col, col, shadow);
    END IF;
    -- Every batch UPDATE writes a new row version, and a row that does not fit its page again
    -- is inserted into every index of the table: for a pgvector hnsw index that is a graph
    -- insert per row (test/bench/results/migrate-*.md: about 100 times slower). Asked to, the
    -- indexes on the source column (which go at the end anyway) go now; the statements that
    -- recreate them are kept for this call and printed.
    IF drop_indexes_first THEN
        FOR idx IN SELECT * FROM vault._migrate_indexes(tbl, src.attnum) LOOP
            IF idx.vault_hnsw IS NOT NULL AND rebuild_index THEN
                rebuild := rebuild OPERATOR(pg_catalog.||) idx.vault_hnsw;
            END IF;
            RAISE NOTICE 'vault.migrate_column: index % on the plaintext column is dropped before the batches', idx.index
                USING HINT = coalesce(pg_catalog.format('Its vault_hnsw replacement: %s;', idx.vault_hnsw),
                                      'Encrypted columns take only vault_hnsw indexes.');
            EXECUTE pg_catalog.format('DROP INDEX %s', idx.index);
        END LOOP;
    END IF;
    COMMIT;

    -- Step 2: batches over ranges of heap blocks, then rows written since.
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NOT NULL', tbl, col) INTO total;
    nblocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::integer;
    step := GREATEST(1, (batch_size::numeric OPERATOR(pg_catalog.*) nblocks
                                    OPERATOR(pg_catalog./) GREATEST(total, 1))::bigint);
    convert_sql := pg_catalog.format('UPDATE ONLY %s t SET %I = %s(%s, %s) WHERE t.%I IS NULL AND t.%I IS NOT NULL ',
                                     tbl, shadow, seal_fn, arg, vault_arg, shadow, col);
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NOT NULL', tbl, shadow) INTO done;
    WHILE b OPERATOR(pg_catalog.<) nblocks LOOP
        EXECUTE convert_sql OPERATOR(pg_catalog.||)
                'AND t.ctid OPERATOR(pg_catalog.>=) pg_catalog.format(''(%s,0)'', $2::bigint)::pg_catalog.tid '
                'AND t.ctid OPERATOR(pg_catalog.<) pg_catalog.format(''(%s,0)'', $3::bigint)::pg_catalog.tid'
            USING vault, b, b OPERATOR(pg_catalog.+) step;
        GET DIAGNOSTICS n = ROW_COUNT;
        b := b OPERATOR(pg_catalog.+) step;
        COMMIT;
        IF n OPERATOR(pg_catalog.>) 0 THEN
            done := done OPERATOR(pg_catalog.+) n;
            RAISE NOTICE 'vault.migrate_column: % of % rows converted', LEAST(done, total), total;
        END IF;
    END LOOP;
    LOOP
        EXECUTE convert_sql OPERATOR(pg_catalog.||)
                pg_catalog.format('AND t.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM ONLY %s '
                                  'WHERE %I IS NULL AND %I IS NOT NULL LIMIT $2))', tbl, shadow, col)
            USING vault, batch_size;
        GET DIAGNOSTICS n = ROW_COUNT;
        COMMIT;
        EXIT WHEN n OPERATOR(pg_catalog.=) 0;
        done := done OPERATOR(pg_catalog.+) n;
        RAISE NOTICE 'vault.migrate_column: % rows written meanwhile converted', n;
    END LOOP;

    -- Step 3: the swap, in one transaction under an exclusive lock.
    EXECUTE pg_catalog.format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', tbl);
    EXECUTE convert_sql USING vault;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s WHERE %I IS NULL AND %I IS NOT NULL',
                              tbl, shadow, col) INTO n;
    IF n OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION '% rows of % could not be converted', n, tbl USING ERRCODE = '55000',
            DETAIL = 'Row-level security may hide them from you, or their vault column is NULL.',
            HINT = 'Nothing was changed in the source column; fix those rows and call again to resume.';
    END IF;
    -- Indexes on the source column go with it; pgvector's hnsw indexes can come back as vault_hnsw.
    FOR idx IN SELECT * FROM vault._migrate_indexes(tbl, src.attnum) LOOP
        IF idx.vault_hnsw IS NOT NULL AND rebuild_index THEN
            rebuild := rebuild OPERATOR(pg_catalog.||) idx.vault_hnsw;
        ELSIF idx.vault_hnsw IS NOT NULL THEN
            RAISE NOTICE 'vault.migrate_column: pgvector index % is dropped with the column', idx.index
                USING HINT = pg_catalog.format('Recreate it with: %s;', idx.vault_hnsw);
        ELSE
            RAISE NOTICE 'vault.migrate_column: index % (%) on the plaintext column is dropped with it', idx.index, idx.amname
                USING HINT = 'Encrypted columns take only vault_hnsw indexes (an ordered index would reveal the plaintexts'' order).';
        END IF;
    END LOOP;
    IF src.atthasdef THEN
        RAISE NOTICE 'vault.migrate_column: the default of % is not carried over', pg_catalog.quote_ident(col)
            USING HINT = 'An encrypted column''s default would be a sealed constant in the catalog; set values when inserting.';
    END IF;
    EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trig, tbl);
    EXECUTE pg_catalog.format('ALTER TABLE %s DROP COLUMN %I', tbl, col);
    EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', tbl, shadow, col);
    IF src.attnotnull THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, col);
    END IF;
    FOREACH stmt IN ARRAY rebuild LOOP
        RAISE NOTICE 'vault.migrate_column: %', stmt;
        EXECUTE stmt;
    END LOOP;
    COMMIT;
    RAISE NOTICE 'vault.migrate_column: % of % is now encrypted (% rows)', pg_catalog.quote_ident(col), tbl, total
        USING HINT = 'The old plaintext stays in dead tuples until VACUUM (VACUUM FULL or CLUSTER rewrite the table), and in WAL, archives and backups taken before; see README "Migrating a column".';
END
$$;
COMMENT ON PROCEDURE vault.migrate_column(regclass, name, name, text, integer, boolean, boolean) IS 'converts a vector, real[], halfvec, sparsevec, text or jsonb column to evector, ehalfvec, esparsevec, etext or ejsonb in place, in committed batches (restartable), sealing each row under the vault its vault_column names or under one vault';
