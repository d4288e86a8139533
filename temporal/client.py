"""Connecting to Temporal with moov.olt's data converter."""

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from moovolt.settings import Settings


async def connect(settings: Settings) -> Client:
    """Connect to the Temporal frontend named by ``settings``.

    Payloads are pydantic models, so the pydantic data converter is used by
    every client and worker of moov.olt.
    """
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
