"""The SPR gateway: owns chargers' OCPP-J WebSockets and relays them to the bus.

The gateway makes no business decision. It performs the handshake, validates
and frames OCPP messages, answers purely protocol-level calls (Heartbeat) and
relays everything else to the SG over RabbitMQ per ``bus.contract``.

Version-neutral code lives in this package; each OCPP version has its own
subpackage (``v16``, later ``v201``) that supplies a ``Dialect``.
"""
