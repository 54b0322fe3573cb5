"""Scale-out (issue 19): process roles, the pods' directory and commands routed to the holding pod."""
