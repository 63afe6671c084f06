"""``laowu backup`` and ``laowu restore`` (docs/operations.md).

SQLite: sqlite3's online backup API on a connection of its own copies one consistent
snapshot (the main file plus every frame committed to the WAL when the copy starts)
while the server keeps reading and writing. PostgreSQL: ``pg_dump``/``pg_restore`` in
the custom format. The media directory (task evidence, training materials) goes into a
tar archive beside the database copy: ``FILE.media.tar``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit


class OpsError(RuntimeError):
    """An operation that cannot go ahead; the message is for the operator (Chinese)."""


@dataclass(frozen=True)
class BackupReport:
    database: Path
    media: Path | None
    media_files: int
    seconds: float


def media_archive(path: Path) -> Path:
    return path.with_name(path.name + ".media.tar")


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite+aiosqlite:///…`` URL, None for other databases."""
    if not url.startswith("sqlite"):
        return None
    return Path(url.split("///", 1)[1])


def libpq_url(url: str) -> str:
    """``postgresql+asyncpg://…`` as the ``postgresql://…`` that pg_dump understands,
    without the password (that goes in PGPASSWORD: argv is visible to every user)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(("postgresql", netloc, parts.path, parts.query, parts.fragment))


def _pg_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    password = urlsplit(url).password
    if password:
        env["PGPASSWORD"] = unquote(password)
    return env


# --- SQLite ----------------------------------------------------------------------------


def backup_sqlite(source: Path, target: Path) -> None:
    if not source.exists():
        raise OpsError(f"数据库文件不存在：{source}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            # pages=-1: one step, one read transaction, so one consistent snapshot;
            # writers go on meanwhile (WAL readers never block writers).
            src.backup(dst, pages=-1)
            # A single self-contained file: no WAL beside the copy.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    os.replace(partial, target)


def sqlite_in_use(path: Path) -> bool:
    """Whether another connection (a server, a worker) has the database open.

    An exclusive-mode connection cannot take its lock while any other connection
    holds the WAL's shared memory, even an idle one.
    """
    if not path.exists():
        return False
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    except sqlite3.DatabaseError as exc:
        raise OpsError(f"{path} 不是可用的 SQLite 数据库：{exc}") from exc
    finally:
        conn.close()


def restore_sqlite(backup: Path, target: Path, *, force: bool) -> None:
    if not backup.exists():
        raise OpsError(f"备份文件不存在：{backup}")
    if not force and sqlite_in_use(target):
        raise OpsError(
            f"数据库 {target} 正被服务或 worker 打开：请先停止它们，或加 --force 强行替换"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(target.name + ".restoring")
    staged.unlink(missing_ok=True)
    shutil.copyfile(backup, staged)
    try:
        conn = sqlite3.connect(staged)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        staged.unlink(missing_ok=True)
        raise OpsError(f"{backup} 不是可用的 SQLite 备份：{exc}") from exc
    if not result or result[0] != "ok":
        staged.unlink(missing_ok=True)
        raise OpsError(f"{backup} 已损坏：{result[0] if result else '无法检查'}")
    # The old database's WAL belongs to the old file: replayed onto the restored
    # one it would corrupt it. It goes with the file it belongs to.
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(staged, target)


# --- PostgreSQL ------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise OpsError(f"找不到 {name}：请安装 PostgreSQL 客户端工具（与服务器同一主版本）")
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)  # noqa: S603 (our own argv, no shell)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise OpsError(f"{Path(args[0]).name} 失败：{detail[-1] if detail else done.returncode}")


def backup_postgres(url: str, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    _run(
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", libpq_url(url)],
        _pg_env(url),
    )
    os.replace(partial, target)


def _postgres_tables(url: str) -> int:
    psql = _tool("psql")
    done = subprocess.run(  # noqa: S603 (our own argv, no shell)
        [
            psql,
            "--no-psqlrc",
            "--tuples-only",
            "--no-align",
            "--command",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            libpq_url(url),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=_pg_env(url),
    )
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise OpsError(f"无法连接数据库：{detail[-1] if detail else done.returncode}")
    return int(done.stdout.strip() or 0)


def restore_postgres(url: str, backup: Path) -> None:
    if not backup.exists():
        raise OpsError(f"备份文件不存在：{backup}")
    tables = _postgres_tables(url)
    if tables:
        raise OpsError(
            f"目标数据库不是空库（已有 {tables} 张表）：请新建一个空数据库并用 "
            "LAOWU_DATABASE_URL 指向它再恢复"
        )
    _run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={libpq_url(url)}",
            str(backup),
        ],
        _pg_env(url),
    )


# --- media -----------------------------------------------------------------------------


def backup_media(media_dir: Path, archive: Path) -> int:
    partial = archive.with_name(archive.name + ".partial")
    count = 0
    with tarfile.open(partial, "w") as tar:
        if media_dir.is_dir():
            for path in sorted(media_dir.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=path.relative_to(media_dir).as_posix())
                    count += 1
    os.replace(partial, archive)
    return count


def restore_media(archive: Path, media_dir: Path) -> Path | None:
    """Unpack beside ``media_dir`` and swap it in; the replaced directory is kept
    as ``media.replaced-<time>`` (returned) for the operator to remove."""
    staged = media_dir.with_name(media_dir.name + ".restoring")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(staged, filter="data")  # refuses absolute paths and ../
    kept = None
    if media_dir.exists():
        kept = media_dir.with_name(f"{media_dir.name}.replaced-{time.strftime('%Y%m%d%H%M%S')}")
        os.replace(media_dir, kept)
    os.replace(staged, media_dir)
    return kept


# --- the commands ----------------------------------------------------------------------


def backup(url: str, media_dir: Path, target: Path) -> BackupReport:
    started = time.perf_counter()
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    path = sqlite_path(url)
    if path is not None:
        if path.resolve() == target:
            raise OpsError("备份文件不能是数据库文件本身")
        backup_sqlite(path, target)
    else:
        backup_postgres(url, target)
    archive = media_archive(target)
    files = backup_media(media_dir, archive)
    return BackupReport(target, archive, files, time.perf_counter() - started)


def restore(url: str, media_dir: Path, source: Path, *, force: bool) -> Path | None:
    """Restore the database, then the media archive if there is one. Returns the
    directory the old media were moved to, if any."""
    path = sqlite_path(url)
    if path is not None:
        if path.resolve() == source.resolve():
            raise OpsError("备份文件不能是数据库文件本身")
        restore_sqlite(source, path, force=force)
    else:
        restore_postgres(url, source)
    archive = media_archive(source)
    return restore_media(archive, media_dir) if archive.exists() else None
