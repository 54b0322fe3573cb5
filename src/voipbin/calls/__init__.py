"""Calls: the call manager (outgoing calls, groupcalls, lifecycle) and the flow executor (activeflows)."""
