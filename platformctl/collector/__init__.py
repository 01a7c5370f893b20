"""The collector: reads live container state from hosts, over SSH or locally.

``interface`` is the seam (a transport runs the constant script on one host), ``connector``
builds the real transports, ``script`` is the remote command and its parser, ``fanout`` runs
hosts in parallel and turns every failure into a :class:`HostResult`.
"""
