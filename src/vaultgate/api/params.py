"""Path and query parameters of the management API, bounded to what the database stores.

An id in the path that no row can have (out of the 64-bit range, or not a number) answers
404 like an unknown id; a query parameter out of its range answers 400 naming it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from vaultgate.bounds import ID_MAX

KeyId = Annotated[int, Path(ge=1, le=ID_MAX, description="The key's id.")]
PageSize = Annotated[int, Query(ge=1, le=500, description="Rows per page.")]
BeforeId = Annotated[
    int | None, Query(ge=1, le=ID_MAX, description="Only rows with a smaller id (paging).")
]
KeyFilter = Annotated[int | None, Query(ge=1, le=ID_MAX, description="Only this key's rows.")]
StatusFilter = Annotated[
    int | None, Query(ge=100, le=599, description="Only rows with this HTTP status.")
]

# The code of the 404 that a path id no row can have answers, by parameter name.
NOT_FOUND_CODES = {"key_id": "key_not_found"}
