"""Workspace infrastructure: per-agreement Docker networks, host firewall rules,
hardened container settings and home volumes.

Every workspace runs on its agreement's own ``--internal`` network and may reach
only the query service and the hub API on the host (THREAT_MODEL boundary 4).
Its home volume is destroyed when the agreement ends (R16, Rizhao Art.31).
"""
