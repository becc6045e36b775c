"""The staff's side: the `policy-site requests` commands."""
