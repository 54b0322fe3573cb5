"""Customers: the account that owns every other resource."""
