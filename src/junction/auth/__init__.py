"""Authentication: identities, credentials, the request gate and the login pages."""
