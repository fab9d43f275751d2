"""Loopback peers that speak the providers' protocols, for tests."""
