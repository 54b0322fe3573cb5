"""Numbers: E.164 telephone numbers owned by a customer, each with the flow run for incoming calls."""
