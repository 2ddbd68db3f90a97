"""Importers for the formats people have, and one :class:`History` object (extra ``io``)."""
from .history import History

__all__ = ["History"]
