"""Simulated chargers: many OCPP 1.6 and 2.0.1 chargers on one event loop.

``moovolt simulate`` runs a ``Scenario`` (``moovolt.sim.scenario``) against a
gateway on this machine and prints a ``Report`` (``moovolt.sim.report``) of
what the chargers sent and what came back. The chargers speak raw OCPP-J
frames (``moovolt.sim.client``, payloads from ``moovolt.sim.payloads``):
the ``ocpp`` library's ChargePoint validates every message against its
schema, which costs more CPU than the gateway under test spends at 10,000
chargers on one machine.
"""
