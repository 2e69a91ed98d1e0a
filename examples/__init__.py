"""Reference clients for both providers (they pass the whole wanmock client matrix)."""
