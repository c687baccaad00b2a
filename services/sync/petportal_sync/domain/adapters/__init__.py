"""Native PIMS payloads → canonical records (see base.py and tables.py)."""

from .base import Adapter, native_field
from .tables import ADAPTERS

__all__ = ["ADAPTERS", "Adapter", "native_field"]
