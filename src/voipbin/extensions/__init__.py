"""Extensions: SIP accounts of a customer that softphones register to."""
