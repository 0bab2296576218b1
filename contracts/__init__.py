"""The public interface of the upsell service: event envelopes and HTTP bodies as msgspec Structs.

Depends on msgspec only. Schema evolution: new fields get defaults, a field never changes type, and a
breaking change is a new event version. Consumed events never forbid unknown fields.
"""
