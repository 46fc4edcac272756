"""Device Defender audit: account audit configuration, audit tasks (on demand
and scheduled on the injectable clock), checks evaluated against this
installation's registry, certificates, policies, role aliases, logging options
and broker connection history, findings and suppressions, mitigation actions
and the tasks that apply them through the ordinary service functions."""
