"""The `voipbin demo` scenario and the softphone it drives."""
