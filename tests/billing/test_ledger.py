"""The ledger's rules, in code and in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.ledger import service as ledger
from billing.ledger.models import Ledger, LedgerPosting, Side
from marketplace.db import begin_write, unit_of_work
from marketplace.errors import Conflict, Invalid
from tests.billing.helpers import check_ledger_invariants

DB_ERRORS = (IntegrityError, DBAPIError)


async def _accounts(session: AsyncSession) -> dict[str, int]:
    made = {}
    for code, ledger_name, side, guard in (
        ("pool", Ledger.subsidy, Side.debit, True),
        ("source", Ledger.subsidy, Side.credit, False),
        ("reserved", Ledger.subsidy, Side.debit, True),
        ("stripe", Ledger.market, Side.debit, False),
    ):
        account = await ledger.ensure_account(
            session,
            code=f"t:{code}",
            ledger=ledger_name,
            kind=code,
            name=code,
            normal_side=side,
            no_overdraft=guard,
        )
        assert account.id is not None
        made[code] = account.id
    return made


def _fund(a: dict[str, int], amount: int) -> list[ledger.Line]:
    return [
        ledger.Line(a["pool"], Side.debit, amount),
        ledger.Line(a["source"], Side.credit, amount),
    ]


async def test_post_replay_conflict_and_reverse(factory: async_sessionmaker[AsyncSession]) -> None:
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
        first = await ledger.post(
            session, key="k1", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 10_000)
        )
        again = await ledger.post(
            session, key="k1", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 10_000)
        )
        assert again.id == first.id
        with pytest.raises(Conflict):
            await ledger.post(
                session, key="k1", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 10_001)
            )
        assert await ledger.current_balance(session, a["pool"]) == 10_000
        assert first.id is not None
        undo = await ledger.reverse(session, entry_id=first.id, key="k1:undo")
        assert undo.reversal_of_id == first.id
        assert await ledger.current_balance(session, a["pool"]) == 0
        assert await ledger.current_balance(session, a["source"]) == 0
        # An entry is reversed at most once, whatever key a second attempt uses.
        with pytest.raises(Conflict):
            await ledger.reverse(session, entry_id=first.id, key="k1:undo-again")


async def test_code_refuses_unbalanced_and_bad_amounts(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
        with pytest.raises(Invalid, match="不相等"):
            await ledger.post(
                session,
                key="u",
                ledger=Ledger.subsidy,
                kind="x",
                lines=[
                    ledger.Line(a["pool"], Side.debit, 5),
                    ledger.Line(a["source"], Side.credit, 4),
                ],
            )
        with pytest.raises(Invalid, match="大于 0"):
            await ledger.post(
                session,
                key="z",
                ledger=Ledger.subsidy,
                kind="x",
                lines=[
                    ledger.Line(a["pool"], Side.debit, 0),
                    ledger.Line(a["source"], Side.credit, 0),
                ],
            )
        with pytest.raises(Invalid, match="补贴账和市场账"):
            await ledger.post(
                session,
                key="mix",
                ledger=Ledger.subsidy,
                kind="x",
                lines=[
                    ledger.Line(a["stripe"], Side.debit, 5),
                    ledger.Line(a["source"], Side.credit, 5),
                ],
            )
        with pytest.raises(ledger.Overdraft):
            await ledger.post(
                session,
                key="o",
                ledger=Ledger.subsidy,
                kind="x",
                lines=[
                    ledger.Line(a["reserved"], Side.debit, 5),
                    ledger.Line(a["pool"], Side.credit, 5),
                ],
            )
        # Nothing of the refused entries is left behind.
        count = (
            await session.execute(select(func.count()).select_from(LedgerPosting))
        ).scalar_one()
        assert count == 0


async def _raw(factory: async_sessionmaker[AsyncSession], *statements: str) -> None:
    async with unit_of_work(factory) as session:
        for statement in statements:
            await session.execute(text(statement))


async def test_database_refuses_what_the_code_would_never_do(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
        entry = await ledger.post(
            session, key="base", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 700)
        )
    now = "'2026-01-01 00:00:00'"
    attacks = [
        "UPDATE ledger_posting SET amount_fen = 1",
        "DELETE FROM ledger_posting",
        "DELETE FROM ledger_entry",
        f"UPDATE ledger_entry SET memo = 'changed' WHERE id = {entry.id}",
        f"UPDATE ledger_entry SET status = 'open' WHERE id = {entry.id}",
        # A posting added to a posted entry.
        f"INSERT INTO ledger_posting (entry_id, account_id, side, amount_fen, effective_at) "
        f"SELECT {entry.id}, {a['pool']}, 'debit', 5, effective_at FROM ledger_entry WHERE id = {entry.id}",
        # An entry born posted, skipping the checks.
        "INSERT INTO ledger_entry (idempotency_key, content_hash, ledger, kind, memo, status, "
        f"effective_at, created_at) VALUES ('born', 'x', 'subsidy', 'x', '', 'posted', {now}, {now})",
        # Zero and negative amounts.
        "INSERT INTO ledger_entry (idempotency_key, content_hash, ledger, kind, memo, status, "
        f"effective_at, created_at) VALUES ('neg', 'x', 'subsidy', 'x', '', 'open', {now}, {now})",
    ]
    for attack in attacks:
        with pytest.raises(DB_ERRORS):
            await _raw(factory, attack) if "'neg'" not in attack else await _raw(
                factory,
                attack,
                "INSERT INTO ledger_posting (entry_id, account_id, side, amount_fen, effective_at) "
                f"SELECT id, {a['pool']}, 'debit', -5, effective_at FROM ledger_entry WHERE idempotency_key = 'neg'",
            )
    # Closing an unbalanced, a one-line, a mixed-ledger or an overdrawing entry.
    open_entry = (
        "INSERT INTO ledger_entry (idempotency_key, content_hash, ledger, kind, memo, status, "
        f"effective_at, created_at) VALUES ('{{key}}', 'x', '{{ledger}}', 'x', '', 'open', {now}, {now})"
    )

    def posting(key: str, account: int, side: str, amount: int) -> str:
        return (
            "INSERT INTO ledger_posting (entry_id, account_id, side, amount_fen, effective_at) "
            f"SELECT id, {account}, '{side}', {amount}, effective_at FROM ledger_entry "
            f"WHERE idempotency_key = '{key}'"
        )

    def close(key: str) -> str:
        return f"UPDATE ledger_entry SET status = 'posted' WHERE idempotency_key = '{key}'"

    cases = {
        "unbalanced": [
            posting("unbalanced", a["pool"], "debit", 5),
            posting("unbalanced", a["source"], "credit", 4),
        ],
        "single": [posting("single", a["pool"], "debit", 5)],
        "mixed": [
            posting("mixed", a["stripe"], "debit", 5),
            posting("mixed", a["source"], "credit", 5),
        ],
        "overdraw": [
            posting("overdraw", a["reserved"], "debit", 800),
            posting("overdraw", a["pool"], "credit", 800),
        ],
    }
    for key, postings in cases.items():
        with pytest.raises(DB_ERRORS):
            await _raw(factory, open_entry.format(key=key, ledger="subsidy"), *postings, close(key))
    async with factory() as session:
        assert await ledger.current_balance(session, a["pool"]) == 700
        assert await ledger.balance_as_of(session, a["pool"], None) == 700
        rows = (await session.execute(select(func.count()).select_from(LedgerPosting))).scalar_one()
        assert rows == 2


async def test_postgres_refuses_an_open_entry_at_commit_and_direct_balances(
    factory: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("deferred constraint triggers exist on PostgreSQL only (docs/billing.md)")
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
    now = "'2026-01-01 00:00:00+00'"
    with pytest.raises(DB_ERRORS, match="left open"):
        await _raw(
            factory,
            "INSERT INTO ledger_entry (idempotency_key, content_hash, ledger, kind, memo, status, "
            f"effective_at, created_at) VALUES ('o', 'x', 'subsidy', 'x', '', 'open', {now}, {now})",
        )
    with pytest.raises(DB_ERRORS, match="never set directly"):
        await _raw(factory, f"UPDATE ledger_account SET balance_fen = 99 WHERE id = {a['pool']}")


async def test_balances_as_of_any_date(factory: async_sessionmaker[AsyncSession]) -> None:
    day = datetime(2026, 3, 1, tzinfo=UTC)
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
        for n in range(3):
            await ledger.post(
                session,
                key=f"d{n}",
                ledger=Ledger.subsidy,
                kind="fund",
                lines=_fund(a, 100 * (n + 1)),
                effective_at=day + timedelta(days=n),
            )
    async with factory() as session:
        assert await ledger.balance_as_of(session, a["pool"], day - timedelta(seconds=1)) == 0
        assert await ledger.balance_as_of(session, a["pool"], day) == 100
        assert (
            await ledger.balance_as_of(session, a["pool"], day + timedelta(days=1, hours=1)) == 300
        )
        assert await ledger.balance_as_of(session, a["source"], None) == 600


async def test_post_many_replays_refuses_conflicts_and_names_an_overdraft(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
        await ledger.post(
            session, key="fund", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 1_000)
        )

    def draw(n: int, amount: int) -> ledger.NewEntry:
        return ledger.NewEntry(
            key=f"m{n}",
            ledger=Ledger.subsidy,
            kind="draw",
            lines=[
                ledger.Line(a["reserved"], Side.debit, amount),
                ledger.Line(a["pool"], Side.credit, amount),
            ],
        )

    async with unit_of_work(factory) as session:
        first = await ledger.post_many(session, [draw(n, 100) for n in range(5)])
        assert len(set(first)) == 5
        # A replay of the same batch (plus one new) posts only the new one.
        again = await ledger.post_many(session, [draw(n, 100) for n in range(6)])
        assert again[:5] == first
        assert await ledger.current_balance(session, a["pool"]) == 400
        with pytest.raises(Conflict):
            await ledger.post_many(session, [draw(0, 101)])
        # 300 + 300 > 400 left: the second entry is named, the first stays.
        with pytest.raises(ledger.Overdraft):
            await ledger.post_many(session, [draw(10, 300), draw(11, 300)])
        assert await ledger.current_balance(session, a["pool"]) == 100
        await check_ledger_invariants(session)


async def test_amounts_beyond_32_bits(factory: async_sessionmaker[AsyncSession]) -> None:
    """A city's yearly appropriation (¥5 billion) fits: amounts and balances are BIGINT."""
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
        await ledger.post(
            session, key="big", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 500_000_000_000)
        )
    async with factory() as session:
        assert await ledger.current_balance(session, a["pool"]) == 500_000_000_000
        assert await ledger.balance_as_of(session, a["pool"], None) == 500_000_000_000


async def test_a_refused_post_leaves_the_callers_transaction_usable(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """The single post is one round trip; a refusal (overdraft, mixed ledgers, an
    unknown account, a second reversal) leaves nothing of the entry and the same
    transaction goes on to post and commit."""
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
    async with unit_of_work(factory) as session:
        funded = await ledger.post(
            session, key="f", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 500)
        )
        assert funded.id is not None
        assert funded.status == "posted"
        refusals: list[tuple[type[Exception], list[ledger.Line]]] = [
            (ledger.Overdraft, [ledger.Line(a["reserved"], Side.debit, 501),
                                ledger.Line(a["pool"], Side.credit, 501)]),
            (Invalid, [ledger.Line(a["stripe"], Side.debit, 5),
                       ledger.Line(a["pool"], Side.credit, 5)]),
            (Invalid, [ledger.Line(999_999, Side.debit, 5),
                       ledger.Line(a["pool"], Side.credit, 5)]),
        ]  # fmt: skip
        for n, (error, lines) in enumerate(refusals):
            with pytest.raises(error):
                await ledger.post(
                    session, key=f"bad{n}", ledger=Ledger.subsidy, kind="x", lines=lines
                )
        await ledger.reverse(session, entry_id=funded.id, key="undo")
        with pytest.raises(Conflict, match="冲正"):
            await ledger.reverse(session, entry_id=funded.id, key="undo-2")
        again = await ledger.post(
            session, key="f2", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 300)
        )
        assert again.id is not None
        assert again.id > funded.id
    async with factory() as session:
        assert await ledger.current_balance(session, a["pool"]) == 300
        keys = set(
            (await session.execute(text("SELECT idempotency_key FROM ledger_entry"))).scalars()
        )
        assert keys == {"f", "undo", "f2"}
        await check_ledger_invariants(session)


async def test_the_one_round_trip_path_is_guarded_by_the_same_triggers(
    factory: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    """Called by hand with an unbalanced or mixed entry, the database's own post
    path (SQLite view, PostgreSQL function) refuses it and leaves nothing."""
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
    now = "'2026-01-01 00:00:00+00'" if db_url.startswith("postgresql") else "'2026-01-01 00:00:00'"
    cases = {
        "unbalanced": [(a["pool"], "debit", 5), (a["source"], "credit", 4)],
        "mixed": [(a["stripe"], "debit", 5), (a["source"], "credit", 5)],
        "single": [(a["pool"], "debit", 5)],
    }
    for key, lines in cases.items():
        if db_url.startswith("postgresql"):
            accounts = ",".join(str(x[0]) for x in lines)
            sides = ",".join(f"'{x[1]}'" for x in lines)
            amounts = ",".join(str(x[2]) for x in lines)
            async with unit_of_work(factory) as session:
                outcome, message = (
                    await session.execute(
                        text(
                            f"SELECT outcome, message FROM ledger_post('{key}', 'x', 'subsidy', "
                            f"'x', '', NULL, {now}, {now}, NULL, ARRAY[{accounts}]::integer[], "
                            f"ARRAY[{sides}]::text[], ARRAY[{amounts}]::bigint[])"
                        )
                    )
                ).one()
            assert outcome == "refused", key
            assert message.startswith("ledger:"), message
        else:
            body = "[" + ",".join(f'[{x[0]},"{x[1]}",{x[2]}]' for x in lines) + "]"
            with pytest.raises(DB_ERRORS):
                await _raw(
                    factory,
                    "INSERT INTO ledger_post_request (idempotency_key, content_hash, ledger, "
                    "kind, memo, reversal_of_id, effective_at, created_at, created_by, lines) "
                    f"VALUES ('{key}', 'x', 'subsidy', 'x', '', NULL, {now}, {now}, NULL, '{body}')",
                )
    async with factory() as session:
        count = (await session.execute(text("SELECT COUNT(*) FROM ledger_entry"))).scalar_one()
        assert count == 0


async def test_a_post_as_the_first_statement_rolls_back_with_its_transaction(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """The single post talks to the driver directly: it must still be inside the
    caller's transaction when it is the transaction's very first statement."""
    async with unit_of_work(factory) as session:
        a = await _accounts(session)
    async with factory() as session:
        entry = await ledger.post(
            session, key="first", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 100)
        )
        assert entry.id is not None
        await session.rollback()
    async with factory() as session:
        await begin_write(session)
        await ledger.post(
            session, key="first-w", ledger=Ledger.subsidy, kind="fund", lines=_fund(a, 100)
        )
        await session.rollback()
    async with factory() as session:
        assert await ledger.find_entry(session, "first") is None
        assert await ledger.find_entry(session, "first-w") is None
        assert await ledger.current_balance(session, a["pool"]) == 0
