"""Registering moov.olt's search attributes on a Temporal server.

The dev server gets them on its command line; a real server (compose,
production) gets them here, through the operator service. Running this again
changes nothing.
"""

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.types import CHARGER_ID, ID_TOKEN, SESSION_STATE

logger = logging.getLogger(__name__)

# Every one of them is a Keyword: exact match, usable in list filters.
SEARCH_ATTRIBUTES = (CHARGER_ID.name, ID_TOKEN.name, SESSION_STATE.name)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the search attributes that ``namespace`` lacks.

    Args:
        client: a client of the server.
        namespace: the namespace the sessions run in.

    Returns:
        The names that were added; empty when all were there.
    """
    service = client.operator_service
    listed = await service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    present = set(listed.custom_attributes) | set(listed.system_attributes)
    missing = [name for name in SEARCH_ATTRIBUTES if name not in present]
    if not missing:
        return []

    try:
        await service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                    for name in missing
                },
            )
        )
    except RPCError as exc:
        # Another process registered them between our list and add.
        if exc.status is not RPCStatusCode.ALREADY_EXISTS:
            raise
    logger.info("registered search attributes %s in %s", missing, namespace)
    return missing
