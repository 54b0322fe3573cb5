"""HTTP API: FastAPI app factory, auth dependencies, error envelope, one router per resource."""
