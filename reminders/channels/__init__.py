"""Delivery channels: one module per transport behind the interface in base.py."""
