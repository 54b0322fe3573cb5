"""Flows: ordered lists of actions run on calls (activeflows execute them; see calls/)."""
