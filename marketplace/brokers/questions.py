"""The question bank: write, version, list and import questions (docs/training.md).

An edit that changes anything adds a new ``QuestionVersion`` and moves the question's
``current_version``; papers already drawn keep pointing at the version they showed.
The city administers the bank; ``load_starter`` loads the shipped starter bank.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, require
from marketplace.brokers import questions_import
from marketplace.brokers.questions_models import (
    Question,
    QuestionImportReport,
    QuestionInput,
    QuestionPublic,
    QuestionVersion,
    QuestionVersionPublic,
)
from marketplace.brokers.questions_rules import CleanQuestion, check_question
from marketplace.clock import utcnow
from marketplace.errors import Conflict, Invalid, NotFound

DATA_DIR = Path(__file__).parent / "data"
STARTER_BANK = DATA_DIR / "question_bank.csv"
CITY_CODE = "50"


def starter_bank() -> Path:
    return STARTER_BANK


def _clean_of(version: QuestionVersion) -> CleanQuestion:
    return CleanQuestion(
        kind=version.kind,
        category=version.category,
        difficulty=version.difficulty,
        stem=version.stem,
        options=tuple(version.options),
        correct=tuple(version.correct),
        explanation=version.explanation,
        source=version.source,
    )


def to_public(question: Question, version: QuestionVersion) -> QuestionPublic:
    assert question.id is not None
    assert version.id is not None
    return QuestionPublic(
        id=question.id,
        code=question.code,
        version=version.version,
        version_id=version.id,
        kind=version.kind,
        category=version.category,
        difficulty=version.difficulty,
        stem=version.stem,
        options=list(version.options),
        correct=list(version.correct),
        explanation=version.explanation,
        source=version.source,
        active=question.active,
        updated_at=question.updated_at,
    )


def version_public(version: QuestionVersion) -> QuestionVersionPublic:
    assert version.id is not None
    return QuestionVersionPublic(
        version_id=version.id,
        version=version.version,
        kind=version.kind,
        category=version.category,
        difficulty=version.difficulty,
        stem=version.stem,
        options=list(version.options),
        correct=list(version.correct),
        explanation=version.explanation,
        source=version.source,
        created_at=version.created_at,
    )


async def current_version(session: AsyncSession, question: Question) -> QuestionVersion:
    version = (
        await session.execute(
            select(QuestionVersion).where(
                col(QuestionVersion.question_id) == question.id,
                col(QuestionVersion.version) == question.current_version,
            )
        )
    ).scalar_one()
    return version


def _new_version(
    question: Question, clean: CleanQuestion, number: int, actor: Actor
) -> QuestionVersion:
    assert question.id is not None
    return QuestionVersion(
        question_id=question.id,
        version=number,
        kind=clean.kind,
        category=clean.category,
        difficulty=clean.difficulty,
        stem=clean.stem,
        options=list(clean.options),
        correct=list(clean.correct),
        explanation=clean.explanation,
        source=clean.source,
        created_by=actor.user_id,
    )


def _mirror(question: Question, clean: CleanQuestion) -> None:
    """The question row keeps the current version's drawing keys."""
    question.kind = clean.kind
    question.category = clean.category
    question.difficulty = clean.difficulty
    question.updated_at = utcnow()


async def _next_code(session: AsyncSession) -> str:
    last = (await session.execute(select(func.max(col(Question.id))))).scalar_one_or_none()
    return f"Q{(last or 0) + 1:05d}"


async def _by_code(session: AsyncSession, code: str) -> Question | None:
    return (
        await session.execute(select(Question).where(col(Question.code) == code))
    ).scalar_one_or_none()


async def _add(
    session: AsyncSession, actor: Actor, code: str, clean: CleanQuestion
) -> tuple[Question, QuestionVersion]:
    question = Question(
        code=code,
        current_version=1,
        kind=clean.kind,
        category=clean.category,
        difficulty=clean.difficulty,
    )
    session.add(question)
    await session.flush()
    version = _new_version(question, clean, 1, actor)
    session.add(version)
    await session.flush()
    return question, version


async def _revise(
    session: AsyncSession, actor: Actor, question: Question, clean: CleanQuestion
) -> tuple[QuestionVersion, bool]:
    """(the current version, whether a new one was made)."""
    current = await current_version(session, question)
    if _clean_of(current) == clean:
        return current, False
    version = _new_version(question, clean, question.current_version + 1, actor)
    session.add(version)
    question.current_version = version.version
    _mirror(question, clean)
    session.add(question)
    await session.flush()
    return version, True


async def create(*, session: AsyncSession, actor: Actor, data: QuestionInput) -> QuestionPublic:
    require(actor, "question.edit")
    clean = check_question(data)
    code = (data.code or "").strip() or await _next_code(session)
    if not questions_import.CODE_PATTERN.match(code):
        raise Invalid("code", "编号只能由字母、数字、点、短横线和下划线组成，最多 32 个字符")
    if await _by_code(session, code) is not None:
        raise Conflict(f"编号 {code} 已被其他题目使用", field="code")
    question, version = await _add(session, actor, code, clean)
    await audit.record(
        session=session,
        actor=actor,
        action="question.create",
        object_type="question",
        object_id=question.id,
        region_code=CITY_CODE,
        detail={"code": code},
    )
    return to_public(question, version)


async def _get(session: AsyncSession, question_id: int) -> Question:
    question = await session.get(Question, question_id)
    if question is None:
        raise NotFound(f"题目 {question_id} 不存在", field="question_id")
    return question


async def update(
    *, session: AsyncSession, actor: Actor, question_id: int, data: QuestionInput
) -> QuestionPublic:
    """A new version when anything changed; the same version otherwise."""
    require(actor, "question.edit")
    question = await _get(session, question_id)
    clean = check_question(data)
    if data.code and data.code.strip() != question.code:
        raise Invalid("code", "题目编号不能修改")
    version, changed = await _revise(session, actor, question, clean)
    if changed:
        await audit.record(
            session=session,
            actor=actor,
            action="question.update",
            object_type="question",
            object_id=question.id,
            region_code=CITY_CODE,
            detail={"version": version.version},
        )
    return to_public(question, version)


async def set_active(
    *, session: AsyncSession, actor: Actor, question_id: int, active: bool
) -> QuestionPublic:
    require(actor, "question.edit")
    question = await _get(session, question_id)
    if question.active != active:
        question.active = active
        question.updated_at = utcnow()
        session.add(question)
        await audit.record(
            session=session,
            actor=actor,
            action="question.activate" if active else "question.retire",
            object_type="question",
            object_id=question.id,
            region_code=CITY_CODE,
        )
        await session.flush()
    return to_public(question, await current_version(session, question))


async def get(*, session: AsyncSession, actor: Actor, question_id: int) -> QuestionPublic:
    require(actor, "question.view")
    question = await _get(session, question_id)
    return to_public(question, await current_version(session, question))


async def versions(
    *, session: AsyncSession, actor: Actor, question_id: int
) -> list[QuestionVersionPublic]:
    require(actor, "question.view")
    await _get(session, question_id)
    rows = await session.execute(
        select(QuestionVersion)
        .where(col(QuestionVersion.question_id) == question_id)
        .order_by(col(QuestionVersion.version).desc())
    )
    return [version_public(v) for v in rows.scalars()]


async def list_questions(
    *,
    session: AsyncSession,
    actor: Actor,
    category: str | None = None,
    difficulty: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[QuestionPublic], int]:
    require(actor, "question.view")
    where = [
        col(QuestionVersion.question_id) == col(Question.id),
        col(QuestionVersion.version) == col(Question.current_version),
    ]
    if category:
        where.append(col(Question.category) == category)
    if difficulty:
        where.append(col(Question.difficulty) == difficulty)
    if kind:
        where.append(col(Question.kind) == kind)
    if active is not None:
        where.append(col(Question.active) == active)
    if q:
        pattern = f"%{q.strip()}%"
        where.append(or_(col(QuestionVersion.stem).like(pattern), col(Question.code).like(pattern)))
    total = (
        await session.execute(
            select(func.count()).select_from(Question, QuestionVersion).where(*where)
        )
    ).scalar_one()
    rows = await session.execute(
        select(Question, QuestionVersion)
        .where(*where)
        .order_by(col(Question.code))
        .limit(limit)
        .offset(offset)
    )
    return [to_public(question, version) for question, version in rows.all()], int(total)


async def categories(*, session: AsyncSession) -> dict[str, dict[str, int]]:
    """Active questions per category and difficulty (what a blueprint can ask for)."""
    rows = await session.execute(
        select(col(Question.category), col(Question.difficulty), func.count())
        .where(col(Question.active).is_(True))
        .group_by(col(Question.category), col(Question.difficulty))
    )
    out: dict[str, dict[str, int]] = {}
    for category, difficulty, n in rows.all():
        out.setdefault(category, {})[difficulty] = int(n)
    return out


async def _upsert_rows(
    session: AsyncSession, actor: Actor, rows: list[questions_import.ParsedRow]
) -> QuestionImportReport:
    """A few statements for the whole file: the known codes and their current versions
    are read at once, new questions are added in one flush and their versions in another."""
    report = QuestionImportReport()
    codes = [row.code for row in rows]
    known: dict[str, Question] = {}
    for start in range(0, len(codes), 500):
        found = await session.execute(
            select(Question).where(col(Question.code).in_(codes[start : start + 500]))
        )
        known.update({q.code: q for q in found.scalars()})
    current: dict[int, QuestionVersion] = {}
    ids = [q.id for q in known.values() if q.id is not None]
    for start in range(0, len(ids), 500):
        found_versions = await session.execute(
            select(QuestionVersion)
            .join(Question, col(Question.id) == col(QuestionVersion.question_id))
            .where(
                col(Question.id).in_(ids[start : start + 500]),
                col(QuestionVersion.version) == col(Question.current_version),
            )
        )
        current.update({v.question_id: v for v in found_versions.scalars()})
    fresh: list[tuple[Question, CleanQuestion]] = []
    for row in rows:
        question = known.get(row.code)
        if question is None:
            question = Question(
                code=row.code,
                kind=row.question.kind,
                category=row.question.category,
                difficulty=row.question.difficulty,
            )
            session.add(question)
            fresh.append((question, row.question))
            report.created += 1
            continue
        assert question.id is not None
        if _clean_of(current[question.id]) == row.question:
            report.unchanged += 1
            continue
        version = _new_version(question, row.question, question.current_version + 1, actor)
        session.add(version)
        question.current_version = version.version
        _mirror(question, row.question)
        session.add(question)
        report.updated += 1
    await session.flush()  # ids for the new questions
    for question, clean in fresh:
        session.add(_new_version(question, clean, 1, actor))
    await session.flush()
    return report


async def import_questions(
    *, session: AsyncSession, actor: Actor, stream: IO[bytes], file_format: str
) -> QuestionImportReport:
    """Rows keyed by 编号: new codes are added, changed rows get a new version. When any
    row has an error nothing is stored, and every error is reported by row and column."""
    require(actor, "question.edit")
    parsed, errors = questions_import.read_file(stream, file_format)
    if errors:
        return QuestionImportReport(errors=errors)
    report = await _upsert_rows(session, actor, parsed)
    if not (report.created or report.updated):
        return report  # nothing changed: nothing to audit
    await audit.record(
        session=session,
        actor=actor,
        action="question.import",
        object_type="question",
        region_code=CITY_CODE,
        detail={"created": report.created, "updated": report.updated},
    )
    return report


async def load_starter(
    *, session: AsyncSession, actor: Actor, path: Path | None = None
) -> QuestionImportReport:
    """The shipped starter bank (idempotent: a second load changes nothing)."""
    with (path or STARTER_BANK).open("rb") as stream:
        return await import_questions(
            session=session, actor=actor, stream=stream, file_format="csv"
        )
