"""Hostile clients and hostile input: the fake must stay up, bounded and provider-shaped."""
