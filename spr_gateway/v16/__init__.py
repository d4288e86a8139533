"""OCPP 1.6 (JSON) for the SPR gateway."""

from spr_gateway.v16.dialect import DIALECT

__all__ = ["DIALECT"]
