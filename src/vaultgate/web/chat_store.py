"""Chat conversations and their messages in the database.

Every query that takes a user id returns only that user's rows, so a conversation id of
another account behaves exactly like one that does not exist. A share link carries a random
token; only its SHA-256 is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vaultgate.storage.tables import chat_messages, conversations

DEFAULT_TITLE = "New chat"
TITLE_MAX = 200
AUTO_TITLE_CHARS = 60
HISTORY_LIMIT = 200
SHARE_TOKEN_BYTES = 24


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation of one account."""

    id: int
    user_id: int
    title: str
    model: str | None
    shared: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One stored turn; ``images`` holds base64 images (PNG, JPEG or WebP)."""

    id: int
    role: str
    content: str
    model: str | None
    images: list[str]
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    request_id: str | None
    finish_reason: str | None
    created_at: dt.datetime


@dataclass(slots=True)
class NewMessage:
    """A turn about to be stored."""

    role: str
    content: str
    created_at: dt.datetime
    model: str | None = None
    images: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micros: int = 0
    request_id: str | None = None
    finish_reason: str | None = None


def title_from(text: str) -> str:
    """A conversation title from its first question: the first line, shortened."""
    line = next((part for part in text.splitlines() if part.strip()), "")
    words = " ".join(line.split())
    if not words:
        return DEFAULT_TITLE
    if len(words) <= AUTO_TITLE_CHARS:
        return words
    return words[: AUTO_TITLE_CHARS - 1].rstrip() + "…"


def clean_title(text: str) -> str:
    """A title as typed by its owner: one line of words, at most ``TITLE_MAX`` characters."""
    return " ".join(text.split())[:TITLE_MAX]


def share_token_hash(token: str) -> str:
    """What is stored for a share token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id, user_id=row.user_id, title=row.title, model=row.model,
        shared=row.share_token_hash is not None, created_at=row.created_at,
        updated_at=row.updated_at,
    )  # fmt: skip


def _message(row: Any) -> ChatMessage:
    return ChatMessage(
        id=row.id, role=row.role, content=row.content, model=row.model,
        images=list(row.images or []), prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens, cost_micros=row.cost_micros,
        request_id=row.request_id, finish_reason=row.finish_reason, created_at=row.created_at,
    )  # fmt: skip


def _owned(user_id: int, conversation_id: int) -> Any:
    return (conversations.c.id == conversation_id) & (conversations.c.user_id == user_id)


async def create_conversation(
    engine: AsyncEngine, user_id: int, *, model: str | None = None
) -> Conversation:
    """A new, empty conversation."""
    now = dt.datetime.now(dt.UTC)
    values = {
        "user_id": user_id, "title": DEFAULT_TITLE, "model": model,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(conversations).values(values).returning(conversations.c.id)
        )
        new_id = int(result.scalar_one())
    return Conversation(new_id, user_id, DEFAULT_TITLE, model, False, now, now)


async def list_conversations(engine: AsyncEngine, user_id: int) -> list[Conversation]:
    """The user's conversations, most recently active first."""
    query = (
        select(conversations)
        .where(conversations.c.user_id == user_id)
        .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
        .limit(HISTORY_LIMIT)
    )
    async with engine.connect() as conn:
        return [_conversation(row) for row in (await conn.execute(query)).all()]


async def find_conversation(
    engine: AsyncEngine, user_id: int, conversation_id: int
) -> Conversation | None:
    """The user's conversation with this id, or None (also for another user's)."""
    query = select(conversations).where(_owned(user_id, conversation_id))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return _conversation(row) if row else None


async def find_shared(engine: AsyncEngine, token: str) -> Conversation | None:
    """The conversation a share token opens, or None when unknown or revoked."""
    query = select(conversations).where(
        conversations.c.share_token_hash == share_token_hash(token)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return _conversation(row) if row else None


async def messages_of(engine: AsyncEngine, conversation_id: int) -> list[ChatMessage]:
    """The conversation's turns in order."""
    query = (
        select(chat_messages)
        .where(chat_messages.c.conversation_id == conversation_id)
        .order_by(chat_messages.c.id)
    )
    async with engine.connect() as conn:
        return [_message(row) for row in (await conn.execute(query)).all()]


async def _change(engine: AsyncEngine, user_id: int, conversation_id: int, **values: Any) -> bool:
    statement = update(conversations).where(_owned(user_id, conversation_id)).values(values)
    async with engine.begin() as conn:
        return bool((await conn.execute(statement)).rowcount)


async def rename_conversation(
    engine: AsyncEngine, user_id: int, conversation_id: int, title: str
) -> bool:
    """Give the user's conversation a new title; False when there is no such conversation."""
    return await _change(engine, user_id, conversation_id, title=title)


async def share_conversation(
    engine: AsyncEngine, user_id: int, conversation_id: int
) -> str | None:
    """A new share token for the conversation (any earlier link stops working)."""
    token = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
    changed = await _change(
        engine, user_id, conversation_id,
        share_token_hash=share_token_hash(token), shared_at=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    return token if changed else None


async def unshare_conversation(engine: AsyncEngine, user_id: int, conversation_id: int) -> bool:
    """Revoke the conversation's share link."""
    return await _change(engine, user_id, conversation_id, share_token_hash=None, shared_at=None)


async def delete_conversation(engine: AsyncEngine, user_id: int, conversation_id: int) -> bool:
    """Delete the user's conversation and its messages."""
    async with engine.begin() as conn:
        owned = (
            await conn.execute(select(conversations.c.id).where(_owned(user_id, conversation_id)))
        ).first()
        if owned is None:
            return False
        await conn.execute(
            delete(chat_messages).where(chat_messages.c.conversation_id == conversation_id)
        )
        await conn.execute(delete(conversations).where(conversations.c.id == conversation_id))
    return True


def _row(conversation_id: int, message: NewMessage) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id, "role": message.role, "content": message.content,
        "model": message.model, "images": message.images or None,
        "prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens,
        "cost_micros": message.cost_micros, "request_id": message.request_id,
        "finish_reason": message.finish_reason, "created_at": message.created_at,
    }  # fmt: skip


async def _drop_answers_after_last_question(conn: AsyncConnection, conversation_id: int) -> None:
    last_question = (
        select(chat_messages.c.id)
        .where(chat_messages.c.conversation_id == conversation_id, chat_messages.c.role == "user")
        .order_by(chat_messages.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    await conn.execute(
        delete(chat_messages).where(
            chat_messages.c.conversation_id == conversation_id,
            chat_messages.c.id > last_question,
        )
    )


async def save_turn(
    engine: AsyncEngine,
    conversation: Conversation,
    messages: Sequence[NewMessage],
    *,
    replace_answer: bool = False,
) -> int:
    """Store a question and its answer (or, with ``replace_answer``, a new answer in place of
    the one after the last question) and note the model and the time on the conversation.
    Returns the id of the answer."""
    answer = messages[-1]
    values: dict[str, Any] = {"model": answer.model, "updated_at": answer.created_at}
    first_question = next((m for m in messages if m.role == "user"), None)
    async with engine.begin() as conn:
        if replace_answer:
            await _drop_answers_after_last_question(conn, conversation.id)
        elif (
            first_question
            and conversation.title == DEFAULT_TITLE
            and not await _has_messages(conn, conversation.id)
        ):
            values["title"] = title_from(first_question.content)
        for message in messages:
            result = await conn.execute(
                insert(chat_messages)
                .values(_row(conversation.id, message))
                .returning(chat_messages.c.id)
            )
            answer_id = int(result.scalar_one())
        await conn.execute(
            update(conversations).where(conversations.c.id == conversation.id).values(values)
        )
    return answer_id


async def _has_messages(conn: AsyncConnection, conversation_id: int) -> bool:
    query = select(chat_messages.c.id).where(chat_messages.c.conversation_id == conversation_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def last_question(engine: AsyncEngine, conversation_id: int) -> ChatMessage | None:
    """The conversation's latest user turn, which a regenerated answer replies to."""
    query = (
        select(chat_messages)
        .where(chat_messages.c.conversation_id == conversation_id, chat_messages.c.role == "user")
        .order_by(chat_messages.c.id.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return _message(row) if row else None


async def find_message(
    engine: AsyncEngine, conversation_id: int, message_id: int
) -> ChatMessage | None:
    """One turn of the conversation, or None."""
    query = select(chat_messages).where(
        chat_messages.c.id == message_id, chat_messages.c.conversation_id == conversation_id
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return _message(row) if row else None
