"""The chat pages: the conversation list and one conversation, rename, delete with
confirmation, share as a read-only link (and revoke it), export, and generated images.

Conversations are found only among the signed-in user's own; any other id is a 404.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vaultgate.providers.catalog import ModelEntry
from vaultgate.web.chat_export import conversation_json, conversation_markdown, image_bytes
from vaultgate.web.chat_store import (
    ChatMessage,
    Conversation,
    clean_title,
    delete_conversation,
    find_conversation,
    find_message,
    find_shared,
    list_conversations,
    messages_of,
    rename_conversation,
    share_conversation,
    unshare_conversation,
)
from vaultgate.web.gateway_calls import active_keys, public_base
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

IMAGE_CACHE = "private, max-age=86400"


def _model_option(model: ModelEntry) -> dict[str, Any]:
    """What the page's script needs about a model: its type, sizes and prices in micros."""
    return {
        "id": model.id, "type": model.type, "input": model.pricing.input_per_m,
        "cached": model.pricing.cached_input_per_m, "output": model.pricing.output_per_m,
        "sizes": list(dict.fromkeys(size.split("/")[0] for size in model.pricing.images)),
    }  # fmt: skip


def message_view(message: ChatMessage, image_base: str) -> dict[str, Any]:
    """A stored turn as the templates show it, its images linked under ``image_base``."""
    return {
        "role": message.role, "content": message.content, "model": message.model,
        "images": [f"{image_base}/{message.id}/{n}" for n in range(len(message.images))],
        "prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens,
        "cost_micros": message.cost_micros, "finish_reason": message.finish_reason,
    }  # fmt: skip


async def _own(request: Request, signed_in: PageSession) -> Conversation:
    state: WebState = request.app.state.web
    conversation_id = int(request.path_params["conversation_id"])
    found = await find_conversation(state.engine, signed_in.session.user.id, conversation_id)
    if found is None:
        raise HTTPException(404)
    return found


def _default_model(state: WebState, conversation: Conversation | None) -> str | None:
    if conversation and conversation.model in state.models:
        return conversation.model
    texts = sorted(m.id for m in state.models.values() if m.type == "text")
    return texts[0] if texts else next(iter(sorted(state.models)), None)


async def _render(
    request: Request,
    signed_in: PageSession,
    conversation: Conversation | None,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    state: WebState = request.app.state.web
    user_id = signed_in.session.user.id
    messages: list[dict[str, Any]] = []
    if conversation is not None:
        image_base = f"/dashboard/chat/{conversation.id}/images"
        stored = await messages_of(state.engine, conversation.id)
        messages = [message_view(m, image_base) for m in stored]
    models = [_model_option(m) for m in sorted(state.models.values(), key=lambda m: m.id)]
    return page(request, "chat.html", {
        "conversation": conversation, "messages": messages, "models": models,
        "conversations": await list_conversations(state.engine, user_id),
        "keys": await active_keys(state, user_id),
        "selected_model": _default_model(state, conversation), **context,
    }, signed_in=signed_in, status=status)  # fmt: skip


async def chat_page(request: Request, signed_in: PageSession) -> Response:
    """GET: the conversation list beside one conversation (or a new one)."""
    if "conversation_id" not in request.path_params:
        return await _render(request, signed_in, None)
    return await _render(request, signed_in, await _own(request, signed_in))


async def rename_page(request: Request, signed_in: PageSession) -> Response:
    """POST a new title."""
    state: WebState = request.app.state.web
    conversation = await _own(request, signed_in)
    title = clean_title(str((await request.form()).get("title") or ""))
    if not title:
        return await _render(
            request, signed_in, conversation, status=400, error="Give the conversation a title."
        )
    await rename_conversation(state.engine, signed_in.session.user.id, conversation.id, title)
    return RedirectResponse(f"/dashboard/chat/{conversation.id}", status_code=303)


async def delete_page(request: Request, signed_in: PageSession) -> Response:
    """GET asks for confirmation; POST deletes the conversation and its messages."""
    state: WebState = request.app.state.web
    conversation = await _own(request, signed_in)
    if request.method == "GET":
        return page(
            request, "chat_delete.html", {"conversation": conversation}, signed_in=signed_in
        )
    await delete_conversation(state.engine, signed_in.session.user.id, conversation.id)
    return RedirectResponse("/dashboard/chat?deleted=1", status_code=303)


async def share_page(request: Request, signed_in: PageSession) -> Response:
    """POST: a new read-only link (an earlier one stops working), shown once."""
    state: WebState = request.app.state.web
    conversation = await _own(request, signed_in)
    token = await share_conversation(state.engine, signed_in.session.user.id, conversation.id)
    shared = await _own(request, signed_in)
    link = f"{public_base(request, state)}/share/{token}"
    return await _render(request, signed_in, shared, share_link=link)


async def unshare_page(request: Request, signed_in: PageSession) -> Response:
    """POST: the read-only link stops working at once."""
    state: WebState = request.app.state.web
    conversation = await _own(request, signed_in)
    await unshare_conversation(state.engine, signed_in.session.user.id, conversation.id)
    return RedirectResponse(f"/dashboard/chat/{conversation.id}?unshared=1", status_code=303)


def _download(content: bytes | str, media_type: str, name: str) -> Response:
    return Response(
        content, media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip


async def export_json(request: Request, signed_in: PageSession) -> Response:
    """GET: the conversation as a JSON file."""
    state: WebState = request.app.state.web
    conversation = await _own(request, signed_in)
    messages = await messages_of(state.engine, conversation.id)
    body = conversation_json(conversation, messages)
    return _download(body, "application/json", f"chat-{conversation.id}.json")


async def export_markdown(request: Request, signed_in: PageSession) -> Response:
    """GET: the conversation as a Markdown file."""
    state: WebState = request.app.state.web
    conversation = await _own(request, signed_in)
    messages = await messages_of(state.engine, conversation.id)
    body = conversation_markdown(conversation, messages)
    return _download(body, "text/markdown; charset=utf-8", f"chat-{conversation.id}.md")


async def _image(state: WebState, conversation: Conversation, request: Request) -> Response:
    message_id = int(request.path_params["message_id"])
    index = int(request.path_params["index"])
    message = await find_message(state.engine, conversation.id, message_id)
    image = image_bytes(message.images[index]) if message and index < len(message.images) else None
    if image is None:
        raise HTTPException(404)
    data, media_type = image
    return Response(data, media_type=media_type, headers={"cache-control": IMAGE_CACHE})


async def image_file(request: Request, signed_in: PageSession) -> Response:
    """GET one generated image of the user's conversation."""
    return await _image(request.app.state.web, await _own(request, signed_in), request)


async def _shared(request: Request) -> Conversation:
    state: WebState = request.app.state.web
    found = await find_shared(state.engine, request.path_params["token"])
    if found is None:
        raise HTTPException(404)
    return found


async def shared_page(request: Request) -> Response:
    """The read-only page behind a share link: the turns only, no account data."""
    state: WebState = request.app.state.web
    conversation = await _shared(request)
    image_base = f"/share/{request.path_params['token']}/images"
    stored = await messages_of(state.engine, conversation.id)
    messages = [message_view(m, image_base) for m in stored]
    # Public: the turns only; what they cost is the owner's business.
    context = {"title": conversation.title, "messages": messages, "public": True}
    return page(request, "chat_shared.html", context)


async def shared_image(request: Request) -> Response:
    """GET one generated image of a shared conversation."""
    return await _image(request.app.state.web, await _shared(request), request)
