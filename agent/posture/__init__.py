"""Host posture on classified hosts (docs/posture.md): routes and interfaces over netlink,
outside probes (违规外联), listening services and shares, password ages."""
