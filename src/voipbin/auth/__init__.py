"""Authentication and authorization: logins (JWT), accesskeys, signup with e-mailed OTP."""
