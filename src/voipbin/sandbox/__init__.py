"""What ``voipbin sandbox`` simulates: a virtual PSTN (every ``tel`` destination reaches a virtual
phone over real SIP on loopback) and the HTTPS endpoint with its self-signed certificate."""
