"""``laowu demo``: the domain's demo data (``marketplace.demo``) with what only the web
layer may bring together, the occupation taxonomy (matching) and the billing demo,
so that ``marketplace`` imports neither (../shared/ARCHITECTURE.md)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.demo import demo_billing
from marketplace import demo
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from matching.taxonomy import load_taxonomy


class TaxonomyVocabulary:
    """Skills as brokers type them (taxonomy names and synonyms) and their
    occupation keys: demo skills are taxonomy terms by construction."""

    def skill_terms(self) -> list[str]:
        return [term for occ in load_taxonomy() for term in occ.terms]

    def codes_for(self, skills: list[str]) -> list[str]:
        taxonomy = load_taxonomy()
        keys: dict[str, None] = {}
        for skill in skills:
            occ = taxonomy.term(skill)
            if occ is not None:
                keys.setdefault(occ.key, None)
        return list(keys)


async def load_all(
    factory: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
    *,
    seed: int,
    media_dir: Path | None = None,
) -> list[demo.Login]:
    """Every demo: the domain's, then billing's (appropriations, subsidies, batches,
    market fees) on top. Idempotent like each part."""
    logins = await demo.load_demo(
        factory, cipher, seed=seed, media_dir=media_dir, vocabulary=TaxonomyVocabulary()
    )
    async with unit_of_work(factory) as session:
        await demo_billing(
            session, cipher, seed=seed, districts=tuple(d.code for d in demo.DISTRICTS)
        )
    return logins
