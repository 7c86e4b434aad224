"""The chat's routes: pages and forms, the script's JSON endpoints, and shared links."""

from __future__ import annotations

from starlette.routing import Route

from vaultgate.web.chat_api import ask, regenerate, start_conversation
from vaultgate.web.chat_pages import (
    chat_page,
    delete_page,
    export_json,
    export_markdown,
    image_file,
    rename_page,
    share_page,
    shared_image,
    shared_page,
    unshare_page,
)
from vaultgate.web.guard import ids_in_range, signed_in_page

ONE = "/dashboard/chat/{conversation_id:int}"
POST = ["POST"]


def chat_routes() -> list[Route]:
    """Every route of the chat."""
    return [
        Route("/dashboard/chat", signed_in_page(chat_page)),
        Route("/dashboard/chat/conversations", signed_in_page(start_conversation), methods=POST),
        Route(ONE, signed_in_page(chat_page)),
        Route(ONE + "/messages", signed_in_page(ask), methods=POST),
        Route(ONE + "/regenerate", signed_in_page(regenerate), methods=POST),
        Route(ONE + "/rename", signed_in_page(rename_page), methods=POST),
        Route(ONE + "/delete", signed_in_page(delete_page), methods=["GET", "POST"]),
        Route(ONE + "/share", signed_in_page(share_page), methods=POST),
        Route(ONE + "/unshare", signed_in_page(unshare_page), methods=POST),
        Route(ONE + "/export.json", signed_in_page(export_json)),
        Route(ONE + "/export.md", signed_in_page(export_markdown)),
        Route(ONE + "/images/{message_id:int}/{index:int}", signed_in_page(image_file)),
        Route("/share/{token}", shared_page),
        Route("/share/{token}/images/{message_id:int}/{index:int}", ids_in_range(shared_image)),
    ]
