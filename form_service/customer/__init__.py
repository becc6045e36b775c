"""The customer's side: the request form, its confirmation and the e-mail link's page."""
