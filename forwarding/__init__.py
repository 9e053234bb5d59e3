"""Forwarding: one client request to the upstream and back (the forwarder, the
upstream client, the relay loop and its capture). Built on the protocol
primitives (streaming/) and the policies (control/); feeds the hand-off
(recording/) through the sinks it is given."""
