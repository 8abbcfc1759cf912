"""Staff pages for orders: orders (orders.py), refill and cancel requests (requests.py)."""

from .orders import OrderAdmin
from .requests import CancelRequestAdmin, RefillAdmin

__all__ = ["CancelRequestAdmin", "OrderAdmin", "RefillAdmin"]
