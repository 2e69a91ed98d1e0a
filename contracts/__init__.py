"""Contract checks, pytest plugin and client checks for the Wan T2I provider APIs."""
