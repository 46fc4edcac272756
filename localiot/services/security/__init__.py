"""Security family: certificates and CAs, policies, authorizers, role aliases, domains."""
