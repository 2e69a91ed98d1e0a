"""The HTTP layer: a thin translation between Starlette and the core."""
