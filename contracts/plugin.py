"""pytest plugin for wanmock (fixtures arrive with the contracts work)."""
