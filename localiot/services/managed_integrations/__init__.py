"""Managed integrations for AWS IoT Device Management (`iot-managed-integrations`).

Managed things: create (with ClientToken idempotency), get, list with
filters, update, delete, their capabilities, metadata, state and
connectivity data, and tags by ARN. The service's other operations answer
NotImplementedException.
"""
