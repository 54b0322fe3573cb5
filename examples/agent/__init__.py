"""A custom AI voice agent on the Transcribe and Speaking APIs (seeds 001/002), with two event transports."""
