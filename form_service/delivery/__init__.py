"""Delivery: the outbox, the worker that empties it, and the e-mails and webhook calls it sends."""
