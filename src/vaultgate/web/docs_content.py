"""What the documentation pages list: error codes, response headers, request fields, and
the example programs with the reader's own server address filled in.

A test compares the error table with the exception tree and with every error code the
gateway and its providers can send, so the table cannot fall behind the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the error table; ``where`` names the part of VaultGate that sends it."""

    status: int
    type: str
    code: str
    when: str
    where: str = "API"


BAD = "invalid_request_error"
ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(400, BAD, "invalid_request", "The request is malformed or asks for something "
              "impossible (an image size the model does not offer, say)."),
    ErrorCode(400, BAD, "invalid_json", "The body is not valid JSON; the message gives the line "
              "and column."),
    ErrorCode(400, BAD, "missing_required", "A required field is missing: model, messages, "
              "prompt, or a tool's name or type. param names it."),
    ErrorCode(400, BAD, "invalid_type", "A field has the wrong JSON type. param names it."),
    ErrorCode(400, BAD, "invalid_value", "A field is out of its range (temperature above 2, an "
              "unknown role...). param names it."),
    ErrorCode(400, BAD, "wrong_endpoint", "The model serves the other endpoint: a text model "
              "sent to /v1/images/generations, or an image model to /v1/chat/completions."),
    ErrorCode(400, BAD, "upstream_rejected_request", "The provider refused the request as "
              "invalid; its message is passed on. Not retried on another provider."),
    ErrorCode(400, BAD, "unsupported_parameter", "The model's provider cannot honour a "
              "parameter faithfully, so the request is refused rather than changed."),
    ErrorCode(400, BAD, "unsupported_by_provider", "The request cannot be expressed in the "
              "provider's format (a content part it has no equivalent for, say)."),
    ErrorCode(400, BAD, "unsupported_value", "An image parameter has a value the provider "
              "cannot honour."),
    ErrorCode(400, BAD, "unsupported_size", "The provider cannot make images of the requested "
              "size; the message lists the sizes it offers."),
    ErrorCode(400, BAD, "content_filter", "The provider's content filter blocked the prompt or "
              "the answer."),
    ErrorCode(400, BAD, "content_policy_violation", "A safety system refused the image prompt, "
              "or removed every image it made."),
    ErrorCode(401, BAD, "invalid_api_key", "The key is missing, unknown, revoked or expired, "
              "or its account is disabled."),
    ErrorCode(402, "insufficient_balance", "insufficient_balance", "The balance cannot cover the "
              "most this request may cost. Top up, or ask for less (max_tokens, n)."),
    ErrorCode(403, "permission_error", "model_not_allowed", "The key's model restrictions do "
              "not include this model."),
    ErrorCode(404, BAD, "model_not_found", "No such model, or the key may not see it."),
    ErrorCode(404, BAD, "not_found", "No such resource: an image link that expired, for "
              "example."),
    ErrorCode(404, BAD, "unknown_path", "No endpoint at this path."),
    ErrorCode(405, BAD, "method_not_allowed", "The endpoint exists but not for this HTTP "
              "method."),
    ErrorCode(413, BAD, "request_too_large", "The body is larger than the server's limit "
              "(10 MiB unless the operator changed it)."),
    ErrorCode(415, BAD, "unsupported_media_type", "The body is not JSON."),
    ErrorCode(415, BAD, "unsupported_content_encoding", "The body is compressed or otherwise "
              "encoded (Content-Encoding); send it as plain JSON."),
    ErrorCode(408, BAD, "request_timeout", "The request body did not arrive within the "
              "server's body read timeout (30 s unless the operator changed it)."),
    ErrorCode(429, "requests", "rate_limit_exceeded", "The key's requests-per-minute limit is "
              "reached. retry-after says when to try again."),
    ErrorCode(429, "tokens", "rate_limit_exceeded", "The key's tokens-per-minute limit is "
              "reached. retry-after says when to try again."),
    ErrorCode(429, "insufficient_quota", "insufficient_quota", "The key's token quota cannot "
              "cover the most this request may use."),
    ErrorCode(429, "requests", "upstream_rate_limited", "Every provider of the model is "
              "rate-limiting; retry-after is the shortest wait any of them asked for."),
    ErrorCode(500, "server_error", "internal_error", "An unexpected failure inside VaultGate; "
              "the details are in the server's log under the request id."),
    ErrorCode(502, "upstream_error", "upstream_error", "A provider failed in a way another "
              "provider cannot fix, or a stream broke after its first content (sent as an "
              "error event in the stream)."),
    ErrorCode(503, "server_error", "no_provider_available", "Every provider behind the model "
              "failed or is cooling down; the message sums up the last failures."),
    ErrorCode(503, "server_error", "storage_unavailable", "The database (or Redis) could not "
              "be reached to admit the request. Try again shortly."),
    ErrorCode(504, "timeout", "upstream_timeout", "A provider stopped answering after the "
              "answer had started; before that, the next provider is tried."),
    ErrorCode(503, "upstream_error", "upstream_overloaded", "The provider says it is "
              "overloaded.", where="stream"),
    ErrorCode(429, "rate_limit_error", "upstream_rate_limited", "The provider rate-limited the "
              "request.", where="stream"),
    ErrorCode(502, "upstream_error", "upstream_prediction_failed", "The provider's prediction "
              "failed or was cancelled.", where="stream"),
    ErrorCode(502, "upstream_error", "provider_misconfigured", "The operator's settings for the "
              "provider are incomplete (a missing credential or region).", where="stream"),
    ErrorCode(404, BAD, "key_not_found", "The playground or chat named a key id that is not "
              "one of yours.", where="dashboard"),
    ErrorCode(404, BAD, "conversation_not_found", "The chat conversation does not exist or is "
              "not yours.", where="dashboard"),
    ErrorCode(401, BAD, "not_signed_in", "No live session cookie.", where="/api"),
    ErrorCode(401, BAD, "invalid_credentials", "Wrong email or password.", where="/api"),
    ErrorCode(403, "permission_error", "forbidden", "Signed in, but not allowed (an admin "
              "task).", where="/api"),
    ErrorCode(403, "permission_error", "csrf_failed", "A state-changing request without the "
              "session's X-CSRF-Token.", where="/api"),
    ErrorCode(404, BAD, "user_not_found", "No account with that email.", where="/api"),
    ErrorCode(404, BAD, "payments_disabled", "No payment provider is configured.",
              where="/api"),
    ErrorCode(400, BAD, "invalid_code", "The redeem code is unknown or already used.",
              where="/api"),
)  # fmt: skip

RESPONSE_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-request-id", "On every response: the id of the request in your logs and in the "
     "server's log. Quote it when asking about a request."),
    ("x-vaultgate-provider", "The provider that answered (after failover, the last one tried)."),
    ("x-vaultgate-attempts", "How many deployments were tried for this request."),
    ("x-vaultgate-warning", "Parameters the provider cannot honour that were dropped, e.g. "
     "dropped unsupported parameters: logit_bias."),
    ("x-ratelimit-limit-requests", "The key's requests per minute."),
    ("x-ratelimit-remaining-requests", "Requests left in the current 60-second window."),
    ("x-ratelimit-reset-requests", "Time until a request fits again, as 1s, 6m0s or 250ms."),
    ("x-ratelimit-limit-tokens", "With a tokens-per-minute limit on the key: the limit."),
    ("x-ratelimit-remaining-tokens", "Tokens left in the current window."),
    ("x-ratelimit-reset-tokens", "Time until the window has room again."),
    ("retry-after", "On 429: whole seconds to wait before trying again."),
)  # fmt: skip

CHAT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("model", "string, required", "A model id from GET /v1/models."),
    ("messages", "array, required", "At least one message; role is system, developer, user, "
     "assistant, tool or function; content is a string or an array of text and image_url "
     "parts (tool messages need tool_call_id)."),
    ("stream", "boolean", "Answer as server-sent events."),
    ("stream_options", "object", "Only with stream: include_usage adds a last chunk with "
     "usage and no choices."),
    ("max_tokens, max_completion_tokens", "integer ≥ 1", "The answer's limit; it also sets how "
     "much is held from your balance (without it, the model's output limit is held)."),
    ("temperature", "number 0–2", ""),
    ("top_p", "number 0–1", ""),
    ("presence_penalty, frequency_penalty", "number −2–2", ""),
    ("n", "integer 1–128", "Choices to generate; each is billed, and held for, in full."),
    ("stop", "string or array of up to 4", ""),
    ("seed", "integer", ""),
    ("logprobs, top_logprobs", "boolean; integer 0–20", ""),
    ("tools, tool_choice", "array; string or object", "Function calling."),
    ("response_format", "object", "type is text, json_object or json_schema."),
    ("logit_bias, metadata", "object", ""),
    ("user", "string", ""),
)  # fmt: skip

IMAGE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("model", "string, required", "An image or hybrid model."),
    ("prompt", "string, required", "Must not be empty."),
    ("n", "integer 1–10", "Images to make; default 1. Each is charged."),
    ("size", "string", "WIDTHxHEIGHT; default 1024x1024. It must be one the model's prices "
     "list (see Models)."),
    ("quality", "string", "standard by default; hd or another quality where the model prices "
     "one."),
    ("response_format", "string", "url (default): a link on this server that expires; "
     "b64_json: the image inline."),
    ("user", "string", ""),
)  # fmt: skip


def sdk_snippets(api_base: str, text_model: str, image_model: str | None) -> dict[str, str]:
    """The example programs, pointed at ``api_base`` with the given models."""
    base = json.dumps(api_base)
    endpoint = json.dumps(api_base + "/chat/completions")
    chat = json.dumps(text_model)
    snippets = {
        "python_chat": f"""from openai import OpenAI

client = OpenAI(base_url={base}, api_key="vg_...")

response = client.chat.completions.create(
    model={chat},
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(response.choices[0].message.content)""",
        "python_stream": f"""stream = client.chat.completions.create(
    model={chat},
    messages=[{{"role": "user", "content": "Write a haiku about gateways."}}],
    stream=True,
    stream_options={{"include_usage": True}},
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="")
    elif chunk.usage:
        print("\\n", chunk.usage.total_tokens, "tokens")""",
        "python_errors": f"""import openai

try:
    client.chat.completions.create(model={chat}, messages=[])
except openai.APIStatusError as error:
    print(error.status_code, error.body["code"], error.response.headers["x-request-id"])""",
        "js_chat": f"""import OpenAI from "openai";

const client = new OpenAI({{ baseURL: {base}, apiKey: process.env.VAULTGATE_KEY }});

const stream = await client.chat.completions.create({{
  model: {chat},
  messages: [{{ role: "user", content: "Hello!" }}],
  stream: true,
  stream_options: {{ include_usage: true }},
}});
for await (const chunk of stream) {{
  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
}}""",
        "js_fetch": f"""const response = await fetch({endpoint}, {{
  method: "POST",
  headers: {{
    "Authorization": `Bearer ${{process.env.VAULTGATE_KEY}}`,
    "Content-Type": "application/json",
  }},
  body: JSON.stringify({{ model: {chat}, messages: [{{ role: "user", content: "Hi" }}] }}),
}});
console.log(response.headers.get("x-request-id"), await response.json());""",
        "curl_chat": f"""curl {api_base}/chat/completions \\
  -H "Authorization: Bearer $VAULTGATE_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": {chat}, "messages": [{{"role": "user", "content": "Hello!"}}]}}'""",
        "curl_stream": f"""curl -N {api_base}/chat/completions \\
  -H "Authorization: Bearer $VAULTGATE_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": {chat}, "stream": true, "stream_options": {{"include_usage": true}},
       "messages": [{{"role": "user", "content": "Hello!"}}]}}'""",
        "curl_models": f"""curl {api_base}/models -H "Authorization: Bearer $VAULTGATE_KEY\"""",
    }
    if image_model:
        image = json.dumps(image_model)
        snippets["python_image"] = f"""import base64

result = client.images.generate(
    model={image}, prompt="a lighthouse at dusk", size="1024x1024",
    response_format="b64_json",
)
open("lighthouse.png", "wb").write(base64.b64decode(result.data[0].b64_json))"""
        snippets["curl_image"] = f"""curl {api_base}/images/generations \\
  -H "Authorization: Bearer $VAULTGATE_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": {image}, "prompt": "a lighthouse", "size": "1024x1024"}}'"""
        snippets["js_image"] = f"""const image = await client.images.generate({{
  model: {image},
  prompt: "a lighthouse at dusk",
  response_format: "b64_json",
}});
console.log(image.data[0].b64_json.length, "base64 characters");"""
    return snippets


STREAM_EXAMPLE = """data: {"id":"chatcmpl-…","object":"chat.completion.chunk","model":"…",
       "choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"chatcmpl-…","object":"chat.completion.chunk","model":"…",
       "choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}

data: {"id":"chatcmpl-…","object":"chat.completion.chunk","model":"…",
       "choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

data: {"id":"chatcmpl-…","object":"chat.completion.chunk","model":"…","choices":[],
       "usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}

data: [DONE]"""

ERROR_EXAMPLE = """{
  "error": {
    "message": "'temperature' must be between 0 and 2, got 3.",
    "type": "invalid_request_error",
    "param": "temperature",
    "code": "invalid_value"
  }
}"""

STREAM_ERROR_EXAMPLE = """data: {"error":{"message":"… ended the stream before finishing",
       "type":"upstream_error","param":null,"code":"upstream_error"}}"""
