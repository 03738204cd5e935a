"""inventory: a tiny stock-keeping tool (the project the example tasks break)."""

from inventory.core import Inventory, load_settings

__all__ = ["Inventory", "load_settings"]
