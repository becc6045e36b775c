"""The rights-request service and the `policy-site` command."""
