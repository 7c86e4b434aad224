"""GET /v1/models and /v1/models/{id}: the models the calling key may use."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vaultgate.accounts.keys import KeyRecord
from vaultgate.errors import ModelNotFound, VaultGateError
from vaultgate.gateway.context import GatewayState, bearer_token
from vaultgate.gateway.responses import JsonResponse, error_response
from vaultgate.providers.base import JsonObject
from vaultgate.providers.catalog import ModelEntry


def model_object(model: ModelEntry) -> JsonObject:
    """OpenAI's model object, with VaultGate's type, provider and pricing beside it."""
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
        "type": model.type,
        "provider": model.deployments[0].provider,
        "providers": list(dict.fromkeys(model.providers)),
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        "capabilities": list(model.capabilities),
        "pricing": model.pricing.public(),
    }


def _visible(state: GatewayState, key: KeyRecord) -> list[ModelEntry]:
    return [m for m in state.registry.models.values() if key.allows(m.id, m.type, m.providers)]


async def list_models(request: Request) -> Response:
    """Every model the key may call."""
    state: GatewayState = request.app.state.gateway
    try:
        key = await state.keys.authenticate(bearer_token(request))
    except VaultGateError as error:
        return error_response(error)
    data = [model_object(m) for m in sorted(_visible(state, key), key=lambda m: m.id)]
    return JsonResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    """One model, if the key may call it."""
    state: GatewayState = request.app.state.gateway
    model_id = request.path_params["model_id"]
    try:
        key = await state.keys.authenticate(bearer_token(request))
        model = state.registry.models.get(model_id)
        if model is None or not key.allows(model.id, model.type, model.providers):
            raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    except VaultGateError as error:
        return error_response(error)
    return JsonResponse(model_object(model))
