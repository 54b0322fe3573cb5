"""One router module per resource; each only translates HTTP to one service call."""
