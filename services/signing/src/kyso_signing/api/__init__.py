"""HTTP routers only: each maps requests onto a room's use cases and its errors onto answers."""
