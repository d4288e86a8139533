"""OCPP 2.0.1 (JSON) for the SPR gateway."""

from spr_gateway.v201.dialect import DIALECT

__all__ = ["DIALECT"]
