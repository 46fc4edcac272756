"""The thing registry: things, thing types, thing groups, billing groups, registry events."""
