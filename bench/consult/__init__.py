"""Consult benchmark: a 3-party video room through the gateway's signaling socket and the consult API under load."""
