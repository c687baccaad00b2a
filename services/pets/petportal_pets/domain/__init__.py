"""The pets domain: plain values and functions, no I/O."""

from .model import Age, Pet, age_on

__all__ = ["Age", "Pet", "age_on"]
