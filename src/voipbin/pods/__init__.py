"""Scale-out (issue 19): process roles, the pods' directory, commands routed to the holding pod, and pod
legs (a call of one media pod in a conference mixed on another)."""
