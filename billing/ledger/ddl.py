"""The database's own guards over the ledger, for SQLite and PostgreSQL.

Installed by migration 0010 (and by nothing else). What they enforce, on both:

- ``ledger_posting`` rows are never updated or deleted; ``ledger_entry`` rows are
  never deleted, and once ``posted`` never changed.
- An entry is inserted ``open``; postings may only be added to an open entry, on an
  account of the entry's ledger (an entry never mixes ``subsidy`` and ``market``),
  with the entry's effective time.
- Closing an entry (``open`` → ``posted``) checks that it has at least two postings
  and that its debits equal its credits, then applies the postings to the accounts'
  ``balance_fen``; the account table's CHECK refuses a no-overdraft balance below zero.
- PostgreSQL only: a deferred constraint trigger refuses to commit a transaction that
  leaves an entry open, and ``balance_fen`` can only be changed by the posting
  trigger. SQLite has no deferred triggers: an entry left open there counts nowhere
  (balances and reports read posted entries only). See docs/billing.md.

Migration 0010 runs these statements: change them only together with a new
migration that drops and recreates what changed.
"""

from __future__ import annotations

SQLITE: list[str] = [
    """CREATE TRIGGER ledger_posting_no_update BEFORE UPDATE ON ledger_posting
    BEGIN SELECT RAISE(ABORT, 'ledger: postings are never updated'); END""",
    """CREATE TRIGGER ledger_posting_no_delete BEFORE DELETE ON ledger_posting
    BEGIN SELECT RAISE(ABORT, 'ledger: postings are never deleted'); END""",
    """CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry
    BEGIN SELECT RAISE(ABORT, 'ledger: entries are never deleted'); END""",
    """CREATE TRIGGER ledger_entry_insert BEFORE INSERT ON ledger_entry
    BEGIN
      SELECT RAISE(ABORT, 'ledger: an entry starts open') WHERE NEW.status IS NOT 'open';
    END""",
    """CREATE TRIGGER ledger_posting_insert BEFORE INSERT ON ledger_posting
    BEGIN
      SELECT RAISE(ABORT, 'ledger: postings may only be added to an open entry')
      WHERE (SELECT status FROM ledger_entry WHERE id = NEW.entry_id) IS NOT 'open';
      SELECT RAISE(ABORT, 'ledger: an entry never mixes ledgers')
      WHERE (SELECT ledger FROM ledger_account WHERE id = NEW.account_id)
         IS NOT (SELECT ledger FROM ledger_entry WHERE id = NEW.entry_id);
      SELECT RAISE(ABORT, 'ledger: a posting carries its entry''s effective time')
      WHERE NEW.effective_at IS NOT (SELECT effective_at FROM ledger_entry WHERE id = NEW.entry_id);
    END""",
    """CREATE TRIGGER ledger_entry_update BEFORE UPDATE ON ledger_entry
    BEGIN
      SELECT RAISE(ABORT, 'ledger: a posted entry is never changed') WHERE OLD.status = 'posted';
      SELECT RAISE(ABORT, 'ledger: only an open entry''s status may change')
      WHERE NEW.id IS NOT OLD.id OR NEW.idempotency_key IS NOT OLD.idempotency_key
         OR NEW.content_hash IS NOT OLD.content_hash OR NEW.ledger IS NOT OLD.ledger
         OR NEW.kind IS NOT OLD.kind OR NEW.memo IS NOT OLD.memo
         OR NEW.reversal_of_id IS NOT OLD.reversal_of_id
         OR NEW.effective_at IS NOT OLD.effective_at OR NEW.created_at IS NOT OLD.created_at
         OR NEW.created_by IS NOT OLD.created_by;
      SELECT RAISE(ABORT, 'ledger: an entry needs at least two postings')
      WHERE NEW.status = 'posted'
        AND (SELECT COUNT(*) FROM ledger_posting WHERE entry_id = NEW.id) < 2;
      SELECT RAISE(ABORT, 'ledger: entry does not balance (debits must equal credits)')
      WHERE NEW.status = 'posted'
        AND (SELECT SUM(CASE side WHEN 'debit' THEN amount_fen ELSE -amount_fen END)
             FROM ledger_posting WHERE entry_id = NEW.id) != 0;
    END""",
    """CREATE TRIGGER ledger_entry_apply AFTER UPDATE OF status ON ledger_entry
    WHEN OLD.status = 'open' AND NEW.status = 'posted'
    BEGIN
      UPDATE ledger_account SET balance_fen = balance_fen + (
        SELECT SUM(CASE WHEN p.side = ledger_account.normal_side
                        THEN p.amount_fen ELSE -p.amount_fen END)
        FROM ledger_posting p WHERE p.entry_id = NEW.id AND p.account_id = ledger_account.id)
      WHERE id IN (SELECT account_id FROM ledger_posting WHERE entry_id = NEW.id);
    END""",
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entry_apply",
    "DROP TRIGGER IF EXISTS ledger_entry_update",
    "DROP TRIGGER IF EXISTS ledger_posting_insert",
    "DROP TRIGGER IF EXISTS ledger_entry_insert",
    "DROP TRIGGER IF EXISTS ledger_entry_no_delete",
    "DROP TRIGGER IF EXISTS ledger_posting_no_delete",
    "DROP TRIGGER IF EXISTS ledger_posting_no_update",
]

POSTGRESQL: list[str] = [
    """CREATE FUNCTION ledger_forbid() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger: % on % is not allowed (append-only)', TG_OP, TG_TABLE_NAME;
    END $$""",
    """CREATE TRIGGER ledger_posting_immutable BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_forbid()""",
    """CREATE TRIGGER ledger_posting_no_truncate BEFORE TRUNCATE ON ledger_posting
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid()""",
    """CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_forbid()""",
    """CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid()""",
    """CREATE FUNCTION ledger_entry_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status <> 'open' THEN RAISE EXCEPTION 'ledger: an entry starts open'; END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_entry_insert BEFORE INSERT ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_insert()""",
    """CREATE FUNCTION ledger_posting_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE e RECORD; account_ledger text;
    BEGIN
      SELECT status, ledger, effective_at INTO e FROM ledger_entry WHERE id = NEW.entry_id;
      IF e.status IS DISTINCT FROM 'open' THEN
        RAISE EXCEPTION 'ledger: postings may only be added to an open entry';
      END IF;
      SELECT ledger INTO account_ledger FROM ledger_account WHERE id = NEW.account_id;
      IF account_ledger IS DISTINCT FROM e.ledger THEN
        RAISE EXCEPTION 'ledger: an entry never mixes ledgers';
      END IF;
      IF NEW.effective_at IS DISTINCT FROM e.effective_at THEN
        RAISE EXCEPTION 'ledger: a posting carries its entry''s effective time';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_posting_insert BEFORE INSERT ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_insert()""",
    """CREATE FUNCTION ledger_entry_update() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE n integer; net bigint;
    BEGIN
      IF OLD.status = 'posted' THEN
        RAISE EXCEPTION 'ledger: a posted entry is never changed';
      END IF;
      IF (NEW.id, NEW.idempotency_key, NEW.content_hash, NEW.ledger, NEW.kind, NEW.memo,
          NEW.reversal_of_id, NEW.effective_at, NEW.created_at, NEW.created_by)
         IS DISTINCT FROM
         (OLD.id, OLD.idempotency_key, OLD.content_hash, OLD.ledger, OLD.kind, OLD.memo,
          OLD.reversal_of_id, OLD.effective_at, OLD.created_at, OLD.created_by) THEN
        RAISE EXCEPTION 'ledger: only an open entry''s status may change';
      END IF;
      IF NEW.status = 'posted' THEN
        SELECT COUNT(*), COALESCE(SUM(CASE side WHEN 'debit' THEN amount_fen ELSE -amount_fen END), 0)
          INTO n, net FROM ledger_posting WHERE entry_id = NEW.id;
        IF n < 2 THEN RAISE EXCEPTION 'ledger: an entry needs at least two postings'; END IF;
        IF net <> 0 THEN
          RAISE EXCEPTION 'ledger: entry does not balance (debits must equal credits)';
        END IF;
        UPDATE ledger_account a SET balance_fen = a.balance_fen + s.delta
        FROM (SELECT p.account_id,
                     SUM(CASE WHEN p.side = acc.normal_side THEN p.amount_fen
                              ELSE -p.amount_fen END) AS delta
              FROM ledger_posting p JOIN ledger_account acc ON acc.id = p.account_id
              WHERE p.entry_id = NEW.id GROUP BY p.account_id) s
        WHERE a.id = s.account_id;
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_entry_update BEFORE UPDATE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_update()""",
    """CREATE FUNCTION ledger_entry_closed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF (SELECT status FROM ledger_entry WHERE id = NEW.id) <> 'posted' THEN
        RAISE EXCEPTION 'ledger: entry % left open at commit', NEW.id;
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE CONSTRAINT TRIGGER ledger_entry_closed AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_closed()""",
    """CREATE FUNCTION ledger_balance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.balance_fen IS DISTINCT FROM OLD.balance_fen AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'ledger: balance_fen follows the postings and is never set directly';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_balance_guard BEFORE UPDATE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_balance_guard()""",
]

POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS ledger_balance_guard ON ledger_account",
    "DROP FUNCTION IF EXISTS ledger_balance_guard()",
    "DROP TRIGGER IF EXISTS ledger_entry_closed ON ledger_entry",
    "DROP FUNCTION IF EXISTS ledger_entry_closed()",
    "DROP TRIGGER IF EXISTS ledger_entry_update ON ledger_entry",
    "DROP FUNCTION IF EXISTS ledger_entry_update()",
    "DROP TRIGGER IF EXISTS ledger_posting_insert ON ledger_posting",
    "DROP FUNCTION IF EXISTS ledger_posting_insert()",
    "DROP TRIGGER IF EXISTS ledger_entry_insert ON ledger_entry",
    "DROP FUNCTION IF EXISTS ledger_entry_insert()",
    "DROP TRIGGER IF EXISTS ledger_entry_no_truncate ON ledger_entry",
    "DROP TRIGGER IF EXISTS ledger_entry_no_delete ON ledger_entry",
    "DROP TRIGGER IF EXISTS ledger_posting_no_truncate ON ledger_posting",
    "DROP TRIGGER IF EXISTS ledger_posting_immutable ON ledger_posting",
    "DROP FUNCTION IF EXISTS ledger_forbid()",
]


def statements(dialect: str, *, drop: bool = False) -> list[str]:
    if dialect == "postgresql":
        return POSTGRESQL_DROP if drop else POSTGRESQL
    return SQLITE_DROP if drop else SQLITE


# Migration 0012a: one round trip for ``ledger.post`` (the single-entry path).
# Neither replaces a guard above: they run the same three steps (insert the entry
# open, insert its postings, close it) inside the database, so every trigger and
# CHECK still fires; they only save the client-server round trips and give the
# caller's transaction back intact when the entry is refused.
#
# SQLite: an INSERT into the view ``ledger_post_request`` runs the three steps in
# its INSTEAD OF trigger. One statement: if anything in it is refused, SQLite backs
# out the whole statement (trigger effects included) and the transaction goes on.
# The lines arrive as JSON ``[[account_id, side, amount_fen], …]``.
#
# PostgreSQL: ``ledger_post(…)`` does the same in a plpgsql block whose EXCEPTION
# handler rolls back to the block's own subtransaction (what a SAVEPOINT would do)
# and returns the error instead of aborting the caller's transaction; an existing
# key returns ``replay`` with the first entry's id and content hash.
POST_SQLITE: list[str] = [
    """CREATE VIEW ledger_post_request AS
    SELECT idempotency_key, content_hash, ledger, kind, memo, reversal_of_id,
           effective_at, created_at, created_by, '' AS lines
    FROM ledger_entry WHERE 0""",
    """CREATE TRIGGER ledger_post_request_insert INSTEAD OF INSERT ON ledger_post_request
    BEGIN
      INSERT INTO ledger_entry (idempotency_key, content_hash, ledger, kind, memo,
                                reversal_of_id, status, effective_at, created_at, created_by)
      VALUES (NEW.idempotency_key, NEW.content_hash, NEW.ledger, NEW.kind, NEW.memo,
              NEW.reversal_of_id, 'open', NEW.effective_at, NEW.created_at, NEW.created_by);
      INSERT INTO ledger_posting (entry_id, account_id, side, amount_fen, effective_at)
      SELECT e.id, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'),
             json_extract(j.value, '$[2]'), NEW.effective_at
      FROM ledger_entry e, json_each(NEW.lines) j
      WHERE e.idempotency_key = NEW.idempotency_key
      ORDER BY j.key;
      UPDATE ledger_entry SET status = 'posted' WHERE idempotency_key = NEW.idempotency_key;
    END""",
]

# 0012a also restates SQLite's closing trigger. Its correlated sum names both the
# entry and the account; with 0012a's covering index led by account_id, SQLite's
# planner (without statistics) would walk all of the account's postings for every
# entry closed — quadratic. The unary + keeps it on the entry_id index.
APPLY_SQLITE_0012A: list[str] = [
    "DROP TRIGGER IF EXISTS ledger_entry_apply",
    """CREATE TRIGGER ledger_entry_apply AFTER UPDATE OF status ON ledger_entry
    WHEN OLD.status = 'open' AND NEW.status = 'posted'
    BEGIN
      UPDATE ledger_account SET balance_fen = balance_fen + (
        SELECT SUM(CASE WHEN p.side = ledger_account.normal_side
                        THEN p.amount_fen ELSE -p.amount_fen END)
        FROM ledger_posting p WHERE p.entry_id = NEW.id AND +p.account_id = ledger_account.id)
      WHERE id IN (SELECT account_id FROM ledger_posting WHERE entry_id = NEW.id);
    END""",
]
APPLY_SQLITE_0010: list[str] = ["DROP TRIGGER IF EXISTS ledger_entry_apply", SQLITE[-1]]

POST_SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS ledger_post_request_insert",
    "DROP VIEW IF EXISTS ledger_post_request",
]

POST_POSTGRESQL: list[str] = [
    """CREATE FUNCTION ledger_post(
      p_key text, p_hash text, p_ledger text, p_kind text, p_memo text,
      p_reversal_of integer, p_effective_at timestamptz, p_created_at timestamptz,
      p_created_by integer, p_accounts integer[], p_sides text[], p_amounts bigint[])
    RETURNS TABLE (outcome text, entry_id integer, entry_hash text, sqlstate text,
                   message text, constraint_name text)
    LANGUAGE plpgsql AS $$
    DECLARE new_id integer; v_state text; v_message text; v_constraint text;
    BEGIN
      BEGIN
        INSERT INTO ledger_entry (idempotency_key, content_hash, ledger, kind, memo,
                                  reversal_of_id, status, effective_at, created_at, created_by)
        VALUES (p_key, p_hash, p_ledger, p_kind, p_memo, p_reversal_of, 'open',
                p_effective_at, p_created_at, p_created_by)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id INTO new_id;
        IF new_id IS NULL THEN
          RETURN QUERY SELECT 'replay'::text, e.id, e.content_hash::text, NULL::text,
                              NULL::text, NULL::text
            FROM ledger_entry e WHERE e.idempotency_key = p_key;
          RETURN;
        END IF;
        INSERT INTO ledger_posting (entry_id, account_id, side, amount_fen, effective_at)
        SELECT new_id, l.a, l.s, l.m, p_effective_at
        FROM unnest(p_accounts, p_sides, p_amounts) WITH ORDINALITY AS l(a, s, m, n)
        ORDER BY l.n;
        UPDATE ledger_entry SET status = 'posted' WHERE id = new_id;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                v_constraint = CONSTRAINT_NAME;
        RETURN QUERY SELECT 'refused'::text, NULL::integer, NULL::text, v_state,
                            v_message, v_constraint;
        RETURN;
      END;
      RETURN QUERY SELECT 'posted'::text, new_id, p_hash, NULL::text, NULL::text, NULL::text;
    END $$""",
]

POST_POSTGRESQL_DROP = [
    "DROP FUNCTION IF EXISTS ledger_post(text, text, text, text, text, integer, timestamptz, "
    "timestamptz, integer, integer[], text[], bigint[])",
]


def post_statements(dialect: str, *, drop: bool = False) -> list[str]:
    """Migration 0012a's statements (the one-round-trip single post)."""
    if dialect == "postgresql":
        return POST_POSTGRESQL_DROP if drop else POST_POSTGRESQL
    return POST_SQLITE_DROP if drop else POST_SQLITE
