"""The ``vaultgate`` command line: serving, migrations and admin tasks, all non-interactive
when the needed options and variables are given."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.keys import DEFAULT_RPM, create_key, revoke_key
from vaultgate.accounts.users import count_users, create_user, find_user_by_email
from vaultgate.billing.audit import audit_ledger
from vaultgate.billing.ledger import GRANT, balance_of, credit
from vaultgate.billing.pricing import format_micros, parse_amount
from vaultgate.config import Settings
from vaultgate.errors import ConfigError, VaultGateError
from vaultgate.log import configure_logging
from vaultgate.providers.catalog import load_catalog
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.registry import Registry
from vaultgate.storage import migrate
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import api_keys

T = TypeVar("T")

app = typer.Typer(
    help="VaultGate: an OpenAI-compatible AI gateway.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
credits_app = typer.Typer(help="Account credit.", no_args_is_help=True)
ledger_app = typer.Typer(help="The credit ledger.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(credits_app, name="credits")
app.add_typer(ledger_app, name="ledger")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings.resolved_database_url())
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except VaultGateError as exc:
        raise _fail(exc.message) from None


def _prepare_storage(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _with_engine(settings, migrate.upgrade)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = Settings()
    _prepare_storage(settings)
    revision = _with_engine(settings, migrate.current_revision)
    typer.echo(f"database at revision {revision}")


async def _ensure_first_admin(engine: AsyncEngine, settings: Settings) -> str | None:
    if await count_users(engine):
        return None
    password = settings.admin_password or secrets.token_urlsafe(12)
    await create_user(
        engine, email=settings.admin_email, username="admin", password=password, is_admin=True,
        starter_credit_micros=settings.starter_credit_micros,
    )  # fmt: skip
    return password if not settings.admin_password else None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes.")] = None,
) -> None:
    """Migrate the database, create the first admin if there is none, and serve."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        load_catalog(settings.config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    _prepare_storage(settings)
    password = _with_engine(settings, lambda e: _ensure_first_admin(e, settings))
    if password:
        typer.echo(f"created admin {settings.admin_email} with password: {password}", err=True)
    address = f"http://{host or settings.host}:{port or settings.port}"
    typer.echo(
        f"VaultGate serving on {address} (dashboard {address}/, API {address}/v1)", err=True
    )
    uvicorn.run(
        "vaultgate.asgi:build",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=30,
        proxy_headers=settings.trust_proxy_headers,
    )


def _password_from_env_or_prompt() -> str:
    password = os.environ.get("VAULTGATE_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise _fail("set VAULTGATE_PASSWORD or run interactively to type a password")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Email address (login name).")],
    username: Annotated[str, typer.Option(help="Display name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
) -> None:
    """Create a user; the password comes from VAULTGATE_PASSWORD or a prompt."""
    settings = Settings()
    password = _password_from_env_or_prompt()
    _prepare_storage(settings)
    user = _with_engine(
        settings,
        lambda e: create_user(
            e,
            email=email,
            username=username,
            password=password,
            is_admin=admin,
            starter_credit_micros=settings.starter_credit_micros,
        ),
    )
    typer.echo(f"created user {user.id} {user.email}{' (admin)' if user.is_admin else ''}")


def _parse_expiry(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _fail("--expires must be an ISO date or time, e.g. 2027-01-31") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@keys_app.command("create")
def keys_create(
    email: Annotated[str, typer.Option(help="Owner's email.")],
    name: Annotated[str, typer.Option(help="A name for the key.")],
    rpm: Annotated[int, typer.Option(help="Requests per minute.")] = DEFAULT_RPM,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    token_quota: Annotated[int | None, typer.Option(help="Total tokens allowed.")] = None,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated restrictions: model ids, type:T or provider:P."),
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry, ISO date or time.")] = None,
) -> None:
    """Create an API key; the key itself is printed alone on the last line."""
    settings = Settings()
    expires_at = _parse_expiry(expires)
    if expires_at is not None and expires_at <= dt.datetime.now(dt.UTC):
        raise _fail("--expires is in the past: the key would never work")
    restrictions = [m for m in models.split(",") if m.strip()] if models else None

    async def work(engine: AsyncEngine) -> tuple[int, str]:
        user = await find_user_by_email(engine, email)
        if user is None:
            raise _fail(f"no user with email {email}")
        key, record = await create_key(
            engine, user_id=user.id, name=name, rpm_limit=rpm, tpm_limit=tpm,
            token_quota=token_quota,
            allowed_models=restrictions, expires_at=expires_at,
        )  # fmt: skip
        return record.id, key

    _prepare_storage(settings)
    key_id, key = _with_engine(settings, work)
    typer.echo(f"created key {key_id} '{name}' for {email}; it will not be shown again:")
    typer.echo(key)


def _key_state(row: Row[Any], now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


@keys_app.command("list")
def keys_list(email: Annotated[str, typer.Option(help="Owner's email.")]) -> None:
    """A user's keys, newest first: id, prefix, name, limits, use and state."""
    settings = Settings()

    async def work(engine: AsyncEngine) -> list[Row[Any]]:
        user = await find_user_by_email(engine, email)
        if user is None:
            raise _fail(f"no user with email {email}")
        async with engine.connect() as conn:
            query = select(api_keys).where(api_keys.c.user_id == user.id)
            return list((await conn.execute(query.order_by(api_keys.c.id.desc()))).all())

    _prepare_storage(settings)
    rows = _with_engine(settings, work)
    now = dt.datetime.now(dt.UTC)
    typer.echo(f"{'id':>6} {'prefix':14} {'name':24} {'rpm':>6} {'quota':>12} {'used':>12} state")
    for row in rows:
        quota = "-" if row.token_quota is None else str(row.token_quota)
        typer.echo(
            f"{row.id:>6} {row.prefix:14} {row.name[:24]:24} {row.rpm_limit:>6} "
            f"{quota:>12} {row.tokens_used:>12} {_key_state(row, now)}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key; every process stops accepting it within a second."""
    settings = Settings()
    _with_engine(settings, lambda e: revoke_key(e, key_id))
    typer.echo(f"revoked key {key_id}")


def _parse_amount(amount: str) -> int:
    try:
        return parse_amount(amount)
    except VaultGateError as exc:
        raise _fail(f"--amount: {exc.message}") from None


@credits_app.command("grant")
def credits_grant(
    email: Annotated[str, typer.Option(help="The account's email.")],
    amount: Annotated[str, typer.Option(help="USD amount, e.g. 25 or 0.50.")],
    note: Annotated[str | None, typer.Option(help="Shown in the account's history.")] = None,
) -> None:
    """Grant credit to an account (a ledger entry of kind grant)."""
    settings = Settings()
    micros = _parse_amount(amount)

    async def work(engine: AsyncEngine) -> int:
        user = await find_user_by_email(engine, email)
        if user is None:
            raise _fail(f"no user with email {email}")
        await credit(
            engine, user_id=user.id, kind=GRANT, amount_micros=micros, note=note or "admin grant"
        )
        return await balance_of(engine, user.id)

    balance = _with_engine(settings, work)
    typer.echo(
        f"granted {format_micros(micros)} USD to {email}; balance {format_micros(balance)} USD"
    )


@ledger_app.command("audit")
def ledger_audit() -> None:
    """Check the ledger against balances, holds, keys and the request log."""
    settings = Settings()
    problems = _with_engine(settings, audit_ledger)
    for problem in problems:
        typer.echo(f"MISMATCH: {problem}")
    if problems:
        raise typer.Exit(code=1)
    typer.echo("ledger audit clean")


@models_app.command("list")
def models_list(
    all_models: Annotated[
        bool, typer.Option("--all", help="Include models whose provider has no credential.")
    ] = False,
) -> None:
    """The models on offer, with type, providers and prices."""
    settings = Settings()
    try:
        catalog = load_catalog(settings.config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    http = HttpClient(pool_size=1, pool_per_host=1, timeouts=Timeouts(1, 1, 1))
    offered = Registry.build(catalog, settings=settings, http=http, environ=os.environ).models
    shown = catalog.models if all_models else offered
    typer.echo(f"{'id':40} {'type':7} {'providers':28} {'in/1M':>8} {'out/1M':>8}")
    for model in sorted(shown.values(), key=lambda m: m.id):
        pricing = model.pricing
        providers = ",".join(dict.fromkeys(model.providers))
        typer.echo(
            f"{model.id:40} {model.type:7} {providers[:28]:28} "
            f"{format_micros(pricing.input_per_m):>8} {format_micros(pricing.output_per_m):>8}"
        )


def main() -> None:
    """Entry point of the ``vaultgate`` script."""
    app()
