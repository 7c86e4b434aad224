"""The chat page's JSON endpoints: start a conversation, ask, regenerate the last answer.

Questions run through the gateway with one of the user's keys, named by id, exactly as in
the playground (see ``gateway_calls``): limits, holds, billing and the request log apply.
Requests carry the session's CSRF token in ``X-CSRF-Token``; a conversation of another
account answers 404, like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from vaultgate.errors import InvalidRequest, ModelNotFound, NotFound, VaultGateError
from vaultgate.gateway.chat import serve_chat
from vaultgate.gateway.context import RequestTrace
from vaultgate.gateway.images import DEFAULT_QUALITY, serve_images
from vaultgate.gateway.responses import JsonResponse, error_response, read_json
from vaultgate.providers.base import JsonObject
from vaultgate.providers.catalog import ModelEntry
from vaultgate.web.chat_answers import (
    RecordedStream,
    StreamTally,
    image_answer,
    openai_messages,
    text_answer,
    title_header,
)
from vaultgate.web.chat_store import (
    DEFAULT_TITLE,
    ChatMessage,
    Conversation,
    NewMessage,
    create_conversation,
    find_conversation,
    messages_of,
    save_turn,
    title_from,
)
from vaultgate.web.gateway_calls import AsgiPassthrough, own_key_loader, public_base
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

MAX_QUESTION_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class Ask:
    """What the page sends with a question: the key, the model, how to answer."""

    key_id: int
    model: ModelEntry
    image: bool
    size: str | None
    content: str = ""


def _model(state: WebState, raw: Any) -> ModelEntry:
    model = state.models.get(raw) if isinstance(raw, str) else None
    if model is None:
        raise ModelNotFound(f"The model '{raw}' does not exist.", param="model")
    return model


def _ask(state: WebState, raw: Any, *, with_content: bool) -> Ask:
    """Check the envelope of a question (or of a regeneration, without content)."""
    if not isinstance(raw, dict):
        raise InvalidRequest("Send a JSON object with 'key_id', 'model' and 'content'.")
    key_id, content, size = raw.get("key_id"), raw.get("content", ""), raw.get("size")
    if isinstance(key_id, bool) or not isinstance(key_id, int):
        raise InvalidRequest("'key_id' must be the id of one of your keys.", param="key_id")
    if with_content and (not isinstance(content, str) or not content.strip()):
        raise InvalidRequest("Write a message first.", param="content")
    if isinstance(content, str) and len(content) > MAX_QUESTION_CHARS:
        raise InvalidRequest("The message is too long.", param="content")
    if size is not None and not isinstance(size, str):
        raise InvalidRequest("'size' must look like '1024x1024'.", param="size")
    model = _model(state, raw.get("model"))
    image = model.type == "image" or (model.type == "hybrid" and raw.get("mode") == "image")
    return Ask(key_id, model, image, size, content.strip() if with_content else "")


async def _own(request: Request, signed_in: PageSession) -> Conversation:
    state: WebState = request.app.state.web
    conversation_id = int(request.path_params["conversation_id"])
    found = await find_conversation(state.engine, signed_in.session.user.id, conversation_id)
    if found is None:
        raise NotFound("There is no such conversation.", code="conversation_not_found")
    return found


def message_json(
    message: ChatMessage | NewMessage, conversation_id: int, message_id: int
) -> JsonObject:
    """A stored turn as the page's script shows it."""
    base = f"/dashboard/chat/{conversation_id}/images/{message_id}"
    return {
        "id": message_id, "role": message.role, "content": message.content,
        "model": message.model, "images": [f"{base}/{n}" for n in range(len(message.images))],
        "prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens,
        "cost_micros": message.cost_micros, "finish_reason": message.finish_reason,
    }  # fmt: skip


async def start_conversation(request: Request, signed_in: PageSession) -> Response:
    """POST: a new empty conversation; answers its id and address."""
    state: WebState = request.app.state.web
    try:
        raw = await read_json(
            request,
            state.settings.max_body_bytes,
            timeout_s=state.settings.body_read_timeout_s,
        )
        model = raw.get("model") if isinstance(raw, dict) else None
        if model is not None:
            _model(state, model)
    except VaultGateError as error:
        return error_response(error)
    created = await create_conversation(state.engine, signed_in.session.user.id, model=model)
    url = f"/dashboard/chat/{created.id}"
    return JsonResponse({"id": created.id, "url": url, "title": created.title}, status_code=201)


async def ask(request: Request, signed_in: PageSession) -> Response:
    """POST a question; the answer streams back (text) or comes as JSON (images)."""
    state: WebState = request.app.state.web
    try:
        conversation = await _own(request, signed_in)
        question = _ask(
            state,
            await read_json(
                request,
                state.settings.max_body_bytes,
                timeout_s=state.settings.body_read_timeout_s,
            ),
            with_content=True,
        )
    except VaultGateError as error:
        return error_response(error)
    history = await messages_of(state.engine, conversation.id)
    asked = NewMessage(role="user", content=question.content, created_at=dt.datetime.now(dt.UTC))
    first = not history and conversation.title == DEFAULT_TITLE
    turn = _Turn(request, signed_in, conversation, question, [*history, asked], [asked])
    return await turn.answer(title=title_from(question.content) if first else None)


async def regenerate(request: Request, signed_in: PageSession) -> Response:
    """POST: answer the last question again, in place of the answer it had."""
    state: WebState = request.app.state.web
    try:
        conversation = await _own(request, signed_in)
        question = _ask(
            state,
            await read_json(
                request,
                state.settings.max_body_bytes,
                timeout_s=state.settings.body_read_timeout_s,
            ),
            with_content=False,
        )
        history = await messages_of(state.engine, conversation.id)
        last = max((i for i, m in enumerate(history) if m.role == "user"), default=None)
        if last is None:
            raise InvalidRequest("There is no question to answer again yet.")
    except VaultGateError as error:
        return error_response(error)
    context = history[: last + 1]
    question = Ask(question.key_id, question.model, question.image, question.size,
                   context[-1].content)  # fmt: skip
    turn = _Turn(request, signed_in, conversation, question, context, [], replace=True)
    return await turn.answer()


class _Turn:
    """One question answered through the gateway and stored with its answer."""

    def __init__(
        self,
        request: Request,
        signed_in: PageSession,
        conversation: Conversation,
        question: Ask,
        context: Sequence[ChatMessage | NewMessage],
        new_messages: list[NewMessage],
        *,
        replace: bool = False,
    ) -> None:
        self.request = request
        self.state: WebState = request.app.state.web
        self.conversation = conversation
        self.question = question
        self.context = context
        self.new_messages = new_messages
        self.replace = replace
        user_id = signed_in.session.user.id
        self.load_key = own_key_loader(self.state, user_id, question.key_id)

    async def answer(self, *, title: str | None = None) -> Response:
        """Run the request; store the turn when it succeeds."""
        if self.question.image:
            return await self._image(title)
        return await self._text(title)

    async def _save(self, answer: NewMessage) -> int:
        return await save_turn(
            self.state.engine, self.conversation, [*self.new_messages, answer],
            replace_answer=self.replace,
        )  # fmt: skip

    async def _text(self, title: str | None) -> Response:
        model = self.question.model
        body: JsonObject = {
            "model": model.id, "messages": openai_messages(self.context), "stream": True,
            "stream_options": {"include_usage": True},
        }  # fmt: skip
        trace = RequestTrace(endpoint="chat")

        async def read_body() -> Any:
            return body

        answer = await serve_chat(
            self.state.gateway, trace, load_key=self.load_key, read_body=read_body
        )
        if isinstance(answer, Response):
            return answer

        async def finish(tally: StreamTally, stopped: bool) -> None:
            await self._save(text_answer(
                tally, stopped, model_id=model.id, body=body, request_id=trace.request_id,
                cost=model.pricing.token_cost,
            ))  # fmt: skip

        return AsgiPassthrough(RecordedStream(answer, finish, title_header(title)))

    async def _image(self, title: str | None) -> Response:
        model = self.question.model
        size = self.question.size or next(iter(model.pricing.images), "1024x1024").split("/")[0]
        body = {
            "model": model.id, "prompt": self.question.content, "n": 1, "size": size,
            "response_format": "b64_json",
        }  # fmt: skip
        trace = RequestTrace(endpoint="images")

        async def read_body() -> Any:
            return body

        answer = await serve_images(
            self.state.gateway, trace, load_key=self.load_key, read_body=read_body,
            base_url=public_base(self.request, self.state),
        )  # fmt: skip
        if answer.status_code != 200:
            return answer
        unit_price = model.pricing.image_price(size, DEFAULT_QUALITY) or 0
        made = image_answer(
            orjson.loads(answer.body), model_id=model.id, request_id=trace.request_id,
            unit_price=unit_price,
        )  # fmt: skip
        answer_id = await self._save(made)
        headers = {k: v for k, v in answer.headers.items() if k.startswith("x-")}
        headers.update(title_header(title))
        payload = {"message": message_json(made, self.conversation.id, answer_id)}
        return JsonResponse(payload, headers=headers)
