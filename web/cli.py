"""The ``laowu`` command. Errors print one clear line and exit non-zero."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.audit import service as audit
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.errors import DomainError
from marketplace.regions import service as regions
from web.settings import Settings, SettingsError, get_settings

log = logging.getLogger("laowu.cli")
P = ParamSpec("P")
R = TypeVar("R")


class CliError(click.ClickException):
    def show(self, file: Any = None) -> None:
        click.echo(f"错误：{self.message}", err=True)


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            where = f"（{exc.field}）" if exc.field else ""
            raise CliError(f"{exc.message}{where}") from exc
        except SettingsError as exc:
            raise CliError(f"配置错误：{exc}") from exc
        except ValidationError as exc:
            raise CliError(f"输入有误：{describe_validation(exc)}") from exc
        except SQLAlchemyError as exc:
            raise CliError(f"数据库错误：{_first_line(exc)}") from exc
        except (OSError, ConnectionError) as exc:
            raise CliError(f"{type(exc).__name__}: {_first_line(exc)}") from exc

    return wrapper


_OPTION_OF = {
    "username": "--username",
    "display_name": "--name",
    "role": "--role",
    "region_code": "--region",
    "password": "密码",
}


def describe_validation(exc: ValidationError) -> str:
    """Pydantic's report as one Chinese line: ``--username 至少 3 个字符；…``."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        ctx = error.get("ctx") or {}
        kind = error["type"]
        if kind == "string_too_short":
            problem = f"至少 {ctx.get('min_length')} 个字符"
        elif kind == "string_too_long":
            problem = f"最多 {ctx.get('max_length')} 个字符"
        elif kind == "string_pattern_mismatch":
            problem = "只能包含字母、数字、下划线、点和短横线"
        elif kind == "missing":
            problem = "必须填写"
        else:
            problem = error["msg"]
        parts.append(f"{_OPTION_OF.get(field, field)} {problem}")
    return "；".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(coro_fn: Callable[[Settings], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(coro_fn(get_settings()))


@click.group()
def main() -> None:
    """劳务经纪人服务平台命令行工具。"""
    from web.ops.memory import limit_malloc_arenas
    from web.ops.observability import configure_logging

    limit_malloc_arenas()  # laowu worker and index rebuild write the search index too
    configure_logging(force=False)  # text, or JSON lines with LAOWU_LOG_FORMAT=json
    logging.getLogger("alembic").setLevel(logging.WARNING)


# --- db ---------------------------------------------------------------------------


@main.group()
def db() -> None:
    """数据库迁移。"""


async def upgrade_database(settings: Settings) -> None:
    from web.migrate import upgrade

    if settings.db.url.startswith("sqlite"):
        Path(settings.db.url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.db.url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@db.command("upgrade")
@friendly
def db_upgrade() -> None:
    """把数据库迁移到最新版本。"""
    _run(upgrade_database)
    click.echo("数据库已是最新版本")


# --- regions ----------------------------------------------------------------------


@main.group("regions")
def regions_group() -> None:
    """区划数据。"""


async def load_regions(settings: Settings, path: Path | None = None) -> int:
    rows = list(regions.read_csv(path or regions.bundled_csv()))
    engine = create_engine(settings.db.url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await regions.load(session=session, rows=rows)
    finally:
        await engine.dispose()


@regions_group.command("load")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly
def regions_load(path: Path | None) -> None:
    """载入重庆市统计用区划（可重复执行，不会重复或覆盖已填人口）。"""
    started = time.perf_counter()
    count = asyncio.run(load_regions(get_settings(), path))
    click.echo(f"已载入 {count} 个区划，用时 {time.perf_counter() - started:.2f} 秒")


# --- users ------------------------------------------------------------------------


@main.group()
def users() -> None:
    """账号。"""


@users.command("create")
@click.option("--username", required=True)
@click.option("--role", required=True)
@click.option("--region", "region_code", required=True, help="管辖区划代码")
@click.option("--name", "display_name", default=None, help="显示名，默认同用户名")
@friendly
def users_create(username: str, role: str, region_code: str, display_name: str | None) -> None:
    """创建账号；密码从标准输入读取。需要动态验证码的角色会打印一次 otpauth URI。"""
    if sys.stdin.isatty():
        password = click.prompt("密码", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("请从标准输入提供密码")

    async def create(settings: Settings) -> str | None:
        engine = create_engine(settings.db.url)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                data = UserCreate(
                    username=username,
                    display_name=display_name or username,
                    role=role,
                    region_code=region_code,
                    password=password,
                )
                _, uri = await accounts.create_user(
                    session=session, actor=SYSTEM, data=data, cipher=settings.security.cipher()
                )
                return uri
        finally:
            await engine.dispose()

    uri = _run(create)
    click.echo(f"已创建账号 {username}（{role}，{region_code}）")
    if uri:
        click.echo("请在手机验证器中添加（只显示这一次）：")
        click.echo(uri)


# --- audit ------------------------------------------------------------------------


@main.group("audit")
def audit_group() -> None:
    """审计日志。"""


@audit_group.command("verify")
@friendly
def audit_verify() -> None:
    """校验审计日志哈希链，报告第一处断裂。"""

    async def check(settings: Settings) -> audit.VerifyResult:
        engine = create_engine(settings.db.url)
        try:
            async with session_factory(engine)() as session:
                return await audit.verify(session=session)
        finally:
            await engine.dispose()

    result = _run(check)
    if result.ok:
        click.echo(f"审计日志完好：已校验 {result.checked} 条")
        return
    raise CliError(f"审计日志在第 {result.broken_at} 条断裂：{result.reason}")


# --- keys -------------------------------------------------------------------------


@main.group("keys")
def keys_group() -> None:
    """数据加密密钥。"""


@keys_group.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
@friendly
def keys_rotate(batch_size: int) -> None:
    """用当前 LAOWU_DATA_KEY 重新加密全部加密字段（旧密钥须在 LAOWU_OLD_DATA_KEYS 中）。

    分批进行、每批一个短事务，服务无需停机；可重复执行，已是新密钥的行不再改动。
    """
    from marketplace.workers.rotation import rotate_keys

    async def run(settings: Settings) -> Any:
        engine = create_engine(settings.db.url)
        try:
            return await rotate_keys(
                session_factory(engine), settings.security.cipher(), batch_size=batch_size
            )
        finally:
            await engine.dispose()

    started = time.perf_counter()
    report = _run(run)
    click.echo(
        f"已用新密钥重新加密：劳动者 {report.workers} 条，变更历史 {report.changes} 条，"
        f"账号动态验证码密钥 {report.users} 个（共检查 {report.scanned} 行，"
        f"用时 {time.perf_counter() - started:.2f} 秒）"
    )


# --- demo, serve, worker ----------------------------------------------------------


@main.command()
@click.option("--seed", default=20261127, show_default=True)
@click.option(
    "--scale",
    "scale_name",
    type=click.Choice(["chongqing", "tiny"]),
    default=None,
    help="生成整市规模数据（chongqing：1.2 万经纪人、300 万劳动者、100 万任务及其资金）"
    "而不是演示数据；tiny 为测试用的小规模",
)
@click.option(
    "--scale-factor",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="各项数量乘以此系数（配合 --scale）",
)
@click.option("--check/--no-check", default=True, show_default=True, help="生成后核对账本")
@friendly
def demo(seed: int, scale_name: str | None, scale_factor: float, check: bool) -> None:
    """载入演示数据（可重复执行）并打印演示账号；--scale 生成整市规模数据。"""
    from marketplace.demo import DEMO_PASSWORD
    from web.demo import load_all

    if scale_name is not None:
        _demo_scale(scale_name, scale_factor, check)
        return
    if scale_factor != 1.0:
        raise click.UsageError("--scale-factor 需要与 --scale 一起使用")

    async def run(settings: Settings) -> list[tuple[str, str, str, str | None]]:
        engine = create_engine(settings.db.url)
        try:
            return await load_all(
                session_factory(engine),
                settings.security.cipher(),
                seed=seed,
                media_dir=settings.media_dir,
            )
        finally:
            await engine.dispose()

    logins = _run(run)
    click.echo(f"演示账号（密码均为 {DEMO_PASSWORD}）：")
    for username, role, region, totp_secret in logins:
        extra = f"  动态验证码密钥 {totp_secret}" if totp_secret else ""
        click.echo(f"  {username:<22} {role:<17} {region}{extra}")


def _demo_scale(scale_name: str, factor: float, check: bool) -> None:
    from marketplace.demo import DEMO_PASSWORD
    from web.scale.check import check_ledger
    from web.scale.generate import generate
    from web.scale.plan import SCALES

    scale = SCALES[scale_name] if factor == 1.0 else SCALES[scale_name].times(factor)

    async def run(settings: Settings) -> None:
        if settings.db.url.startswith("sqlite"):
            Path(settings.db.url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        click.echo(
            f"生成 {scale.name} 规模数据：经纪人 {scale.brokers:,}，劳动者 {scale.workers:,}，"
            f"单位 {scale.organizations:,}，岗位 {scale.jobs:,}，任务 {scale.tasks:,}"
        )
        report = await generate(
            settings.db.url, scale, settings.security.cipher(), progress=click.echo
        )
        click.echo(f"合计用时 {report.seconds:.1f} 秒，内存峰值 {report.peak_rss_mb:.0f} MB")
        if not check:
            return
        engine = create_engine(settings.db.url)
        try:
            async with engine.connect() as conn:
                result = await check_ledger(conn)
        finally:
            await engine.dispose()
        if not result.ok:
            raise CliError("账本核对未通过：" + "；".join(result.problems()))
        click.echo(
            f"账本核对通过：{result.entries:,} 笔分录、{result.postings:,} 条过账，"
            f"借贷相等（各 {result.debits_fen / 100:,.2f} 元），余额与过账一致，无透支"
        )
        click.echo(
            f"经纪人账号 b00001…b{scale.brokers:05d}，管理员 city_admin，密码均为 {DEMO_PASSWORD}；"
            "搜索索引请运行 laowu index rebuild"
        )

    _run(run)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@friendly
def serve(host: str, port: int, workers: int) -> None:
    """迁移数据库后启动网页与 API 服务。"""
    import uvicorn

    _run(upgrade_database)
    click.echo(f"服务地址 http://{host}:{port}")
    uvicorn.run(
        "web.asgi:build",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
        access_log=False,
        log_config=None,  # uvicorn's lines go through our handler (request ids, JSON)
    )


@main.command()
@click.option("--interval", default=1.0, show_default=True, type=float)
@click.option("--once", is_flag=True, help="处理完积压事件后退出")
@friendly
def worker(interval: float, once: bool) -> None:
    """单独运行事件分发（outbox）进程。"""
    from marketplace.dispatcher import drain
    from web.schedule import Schedule, duties
    from web.wiring import build_registry

    async def loop(settings: Settings) -> None:
        engine = create_engine(settings.db.url)
        factory = session_factory(engine)
        registry = build_registry(search=_search_backend(settings))
        schedule = Schedule(duties(settings.billing))
        try:
            while True:
                for message in await schedule.tick(factory):
                    click.echo(message)
                try:
                    report = await drain(factory, registry)
                except Exception as exc:
                    if once:
                        raise
                    # A database restart must not end a long-running worker: try again.
                    log.warning("outbox drain failed, retrying: %s", _first_line(exc))
                else:
                    if report.delivered or report.failed:
                        click.echo(f"已投递 {report.delivered}，失败 {report.failed}")
                    if once:
                        return
                await asyncio.sleep(interval)
        finally:
            await engine.dispose()

    _run(loop)


# --- jobs -----------------------------------------------------------------------------


@main.group("jobs")
def jobs_group() -> None:
    """岗位。"""


@jobs_group.command("expire")
@click.option(
    "--today",
    "on",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="按此日期判断，默认今天（北京时间）",
)
@friendly
def jobs_expire(on: Any) -> None:
    """把结束日期已过的岗位标为已过期；可重复运行，已过期的不再处理。"""
    from marketplace.jobs import service as jobs

    day = on.date() if on is not None else jobs.today_local()

    async def run(settings: Settings) -> int:
        engine = create_engine(settings.db.url)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await jobs.expire_due(session, day)
        finally:
            await engine.dispose()

    click.echo(f"已过期岗位：{_run(run)} 个（{day.isoformat()}）")


# --- scores -----------------------------------------------------------------------


@main.group("scores")
def scores_group() -> None:
    """经纪人积分考核。"""


@scores_group.command("compute")
@click.option("--period", required=True, help="考核期间，YYYY-MM")
@friendly
def scores_compute(period: str) -> None:
    """按当期生效的积分规则为全部在岗经纪人计分；可重复执行，结果相同。"""
    from marketplace.scoring import service as scoring
    from marketplace.scoring.rules import Period

    parsed = Period.parse(period)
    started = time.perf_counter()

    async def run(settings: Settings) -> scoring.RunResult:
        engine = create_engine(settings.db.url)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await scoring.compute(
                    session=session, actor=SYSTEM, period=parsed, trigger="cli"
                )
        finally:
            await engine.dispose()

    result = _run(run)
    click.echo(
        f"{parsed} 积分已计算：{result.scored} 名经纪人，输入摘要 {result.run.inputs_digest[:12]}，"
        f"用时 {time.perf_counter() - started:.2f} 秒"
    )


# --- workers ----------------------------------------------------------------------


@main.group("workers")
def workers_group() -> None:
    """劳动者实名台账。"""


@workers_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", "broker_id", required=True, type=int, help="维护这些记录的经纪人编号")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@friendly
def workers_import(path: Path, broker_id: int, batch_size: int) -> None:
    """导入台账文件（CSV 或 XLSX，模板表头或 API 字段名）；每批提交一次，可重复执行。"""
    from marketplace.db import begin_write
    from marketplace.workers import importing
    from matching.normalize import TaxonomyOccupationMapper

    file_format = importing.format_of(path.name)
    started = time.perf_counter()
    with path.open("rb") as stream:
        total = importing.count_rows(stream, file_format)  # checks the header too
    so_far = importing.ImportReport()

    def progress(rows: int) -> None:
        click.echo(
            f"已处理 {rows} / {total} 行（{rows * 100 // max(total, rows)}%）：新增 {so_far.created}，"
            f"更新 {so_far.updated}，未变 {so_far.unchanged}，出错 {so_far.error_rows}"
            f"（{time.perf_counter() - started:.1f} 秒）",
            err=True,
        )

    async def commit(session: Any) -> None:
        await session.commit()
        await begin_write(session)

    async def run(settings: Settings) -> importing.ImportReport:
        engine = create_engine(settings.db.url)
        try:
            with path.open("rb") as stream:
                async with unit_of_work(session_factory(engine)) as session:
                    return await importing.import_workers(
                        session=session,
                        actor=SYSTEM,
                        cipher=settings.security.cipher(),
                        stream=stream,
                        file_format=file_format,
                        broker_id=broker_id,
                        occupations=TaxonomyOccupationMapper(),
                        on_progress=progress,
                        on_batch=commit,
                        batch_size=batch_size,
                        report=so_far,
                    )
        finally:
            await engine.dispose()

    report = _run(run)
    click.echo(
        f"导入完成：新增 {report.created}，更新 {report.updated}，未变 {report.unchanged}，"
        f"出错 {report.error_rows} 行（用时 {time.perf_counter() - started:.2f} 秒）"
    )
    for error in report.errors:
        click.echo(f"  第 {error.row} 行 {error.column}：{error.message}")


@workers_group.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--village", "village_code", default=None, help="户籍区划代码前缀")
@click.option("--broker", "broker_id", default=None, type=int, help="只导出此经纪人维护的记录")
@friendly
def workers_export(path: Path, village_code: str | None, broker_id: int | None) -> None:
    """导出台账（证件号和手机号脱敏）到 .csv 或 .xlsx 文件；导出留审计记录。"""
    from marketplace.workers import exporting, importing

    file_format = importing.format_of(path.name)

    async def run(settings: Settings) -> int:
        engine = create_engine(settings.db.url)
        try:
            with path.open("wb") as out:
                async with unit_of_work(session_factory(engine)) as session:
                    return await exporting.export_workers(
                        session=session,
                        actor=SYSTEM,
                        cipher=settings.security.cipher(),
                        out=out,
                        file_format=file_format,
                        village_code=village_code,
                        broker_id=broker_id,
                    )
        finally:
            await engine.dispose()

    rows = _run(run)
    click.echo(f"已导出 {rows} 条到 {path}")


# --- question bank (docs/training.md) --------------------------------------------


@main.group("questions")
def questions_group() -> None:
    """考试题库。"""


async def load_questions(settings: Settings, path: Path | None = None) -> Any:
    from marketplace.brokers import questions

    engine = create_engine(settings.db.url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            report = await questions.load_starter(session=session, actor=SYSTEM, path=path)
            if report.errors:
                # Nothing is stored when a row is refused; roll back the audit entry too.
                await session.rollback()
            return report
    finally:
        await engine.dispose()


@questions_group.command("load")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly
def questions_load(path: Path | None) -> None:
    """载入题库（默认为随附的入门题库；按编号更新，可重复执行）。"""
    report = asyncio.run(load_questions(get_settings(), path))
    if report.errors:
        for error in report.errors[:50]:
            click.echo(f"第 {error.row} 行（{error.column}）：{error.message}", err=True)
        raise CliError(f"{len(report.errors)} 处错误，题库未改动")
    click.echo(
        f"新增 {report.created} 题，更新 {report.updated} 题（新版本），未变 {report.unchanged} 题"
    )


# --- search index -------------------------------------------------------------------


def _search_backend(settings: Settings) -> Any:
    from matching.search import open_backend

    return open_backend(
        url=settings.search.url, api_key=settings.search.api_key, var_dir=settings.var_dir
    )


@main.group("index")
def index_group() -> None:
    """搜索索引。"""


@index_group.command("rebuild")
@click.option(
    "--only", type=click.Choice(["workers", "jobs"]), default=None, help="只重建其中一个索引"
)
@friendly
def index_rebuild(only: str | None) -> None:
    """从数据库重建搜索索引（劳动者、岗位）；重建完成前搜索仍用旧索引。"""
    from matching.search import sync

    async def run(settings: Settings) -> list[tuple[str, int, float]]:
        engine = create_engine(settings.db.url)
        backend = _search_backend(settings)
        done: list[tuple[str, int, float]] = []
        try:
            for name, rebuild in (("workers", sync.rebuild_workers), ("jobs", sync.rebuild_jobs)):
                if only not in (None, name):
                    continue
                started = time.perf_counter()
                async with session_factory(engine)() as session:
                    count = await rebuild(session, backend)
                done.append((name, count, time.perf_counter() - started))
        finally:
            await backend.close()
            await engine.dispose()
        return done

    labels = {"workers": "劳动者", "jobs": "岗位"}
    for name, count, seconds in _run(run):
        click.echo(f"{labels[name]}索引已重建：{count} 条（{seconds:.1f} 秒）")


# --- matching -----------------------------------------------------------------------


@main.group("matching")
def matching_group() -> None:
    """匹配推荐。"""


@matching_group.command("rebuild")
@friendly
def matching_rebuild() -> None:
    """从劳动者台账重建候选人预筛表（平时随台账变更自动更新；恢复数据库后运行）。"""
    from marketplace.placements import candidates

    async def run(settings: Settings) -> tuple[int, float]:
        engine = create_engine(settings.db.url)
        started = time.perf_counter()
        try:
            async with unit_of_work(session_factory(engine)) as session:
                rows = await candidates.rebuild(session)
        finally:
            await engine.dispose()
        return rows, time.perf_counter() - started

    rows, seconds = _run(run)
    click.echo(f"候选人预筛表已重建：{rows} 行（{seconds:.1f} 秒）")


# --- public-service tasks ---------------------------------------------------------


@main.group("tasks")
def tasks_group() -> None:
    """公共服务任务。"""


@tasks_group.command("generate")
@click.option("--period", required=True, help="月份，如 2026-12")
@friendly
def tasks_generate(period: str) -> None:
    """为台账中超过 12 个月未核实记录的村生成本期“人力资源数据库更新”任务（可重复执行）。"""
    import re

    from marketplace.tasks import service as tasks

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise CliError("--period 应为 YYYY-MM，如 2026-12")

    async def run(settings: Settings) -> dict[str, int]:
        engine = create_engine(settings.db.url)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await tasks.generate_hr_tasks(session=session, period=period)
        finally:
            await engine.dispose()

    report = _run(run)
    click.echo(
        f"{period}：新生成 {report['created']} 个任务，已有 {report['existing']} 个，"
        f"{report['no_broker']} 个村没有在岗经纪人未生成"
    )


@tasks_group.command("sweep")
@friendly
def tasks_sweep() -> None:
    """过期未领取的任务标为已过期，过期已领取、已退回或已通过的任务关闭。"""
    from marketplace.tasks import service as tasks

    async def run(settings: Settings) -> dict[str, int]:
        engine = create_engine(settings.db.url)
        try:
            return await tasks.sweep_all(session_factory(engine))
        finally:
            await engine.dispose()

    moved = _run(run)
    click.echo(f"已过期 {moved['expired']} 个，已关闭 {moved['closed']} 个")


# --- billing ----------------------------------------------------------------------


@main.group("billing")
def billing_group() -> None:
    """补贴资金：每日转为可支付、公益性岗位月补贴、执行发放批次。"""


@billing_group.command("daily")
@friendly
def billing_daily() -> None:
    """把已过观察期、未被抽查否定的补贴转为可支付（每日运行）。"""
    from billing import subsidies

    async def run(settings: Settings) -> int:
        engine = create_engine(settings.db.url)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await subsidies.promote_payable(session, config=settings.billing)
        finally:
            await engine.dispose()

    click.echo(f"转为可支付 {_run(run)} 笔")


@billing_group.command("welfare-posts")
@click.option("--period", required=True, help="月份 YYYY-MM")
@friendly
def billing_welfare_posts(period: str) -> None:
    """记入当月公益性岗位补贴（每月运行，可重复执行）。"""
    import re

    from billing import subsidies

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise CliError("--period 应为 YYYY-MM，例如 2026-03")

    async def run(settings: Settings) -> int:
        engine = create_engine(settings.db.url)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await subsidies.book_welfare_posts(session, period=period)
        finally:
            await engine.dispose()

    click.echo(f"记入公益性岗位补贴 {_run(run)} 笔")


@billing_group.command("execute-batch")
@click.option("--id", "batch_id", required=True, type=int)
@click.option("--user", "username", required=True, help="执行的财务人员用户名（须非生成人）")
@friendly
def billing_execute_batch(batch_id: int, username: str) -> None:
    """线上执行已审核的发放批次，每 200 位经纪人提交一次：中断后重跑，不重付不漏付。"""
    from sqlalchemy import select
    from sqlmodel import col

    from billing import payouts
    from marketplace.accounts.models import User
    from marketplace.db import begin_write

    async def run(settings: Settings) -> str:
        engine = create_engine(settings.db.url)
        try:
            async with session_factory(engine)() as session:
                user = (
                    await session.execute(select(User).where(col(User.username) == username))
                ).scalar_one_or_none()
                if user is None:
                    raise CliError(f"没有用户 {username}")
                actor = accounts.actor_for(user)
                await begin_write(session)

                async def commit() -> None:
                    await session.commit()
                    await begin_write(session)

                batch = await payouts.execute(
                    session,
                    actor=actor,
                    batch_id=batch_id,
                    data=payouts.ExecuteIn(mode="online"),
                    after_line=commit,
                )
                await session.commit()
                return str(batch.status)
        finally:
            await engine.dispose()

    click.echo(f"批次 {batch_id}：{_run(run)}")


# --- backup and restore (docs/operations.md) -------------------------------------------


@main.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@friendly
def backup_command(path: Path) -> None:
    """在线备份数据库（服务无需停机）到 PATH，媒体文件（证据、培训材料）到 PATH.media.tar。"""
    from web.ops import backup as ops

    settings = get_settings()
    try:
        report = ops.backup(settings.db.url, settings.media_dir, path)
    except ops.OpsError as exc:
        raise CliError(str(exc)) from exc
    click.echo(
        f"已备份数据库到 {report.database}，媒体文件 {report.media_files} 个到 {report.media}"
        f"（用时 {report.seconds:.2f} 秒）"
    )


@main.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force", is_flag=True, help="SQLite：即使数据库正被服务打开也替换（之后须重启服务）"
)
@friendly
def restore_command(path: Path, force: bool) -> None:
    """从 laowu backup 的备份恢复数据库（及同名 .media.tar 中的媒体文件）。"""
    from web.ops import backup as ops

    settings = get_settings()
    try:
        kept = ops.restore(settings.db.url, settings.media_dir, path, force=force)
    except ops.OpsError as exc:
        raise CliError(str(exc)) from exc
    click.echo(f"已从 {path} 恢复数据库")
    if kept is not None:
        click.echo(f"已恢复媒体文件；原媒体目录保留在 {kept}")
    click.echo("请运行 laowu db upgrade 与 laowu audit verify 检查")
