"""Host posture on classified hosts (docs/posture.md): routes and interfaces over netlink,
outside probes (违规外联), radios kept off, listening services and shares, password ages,
and the self-inspection report (`baomi-agent check`)."""
