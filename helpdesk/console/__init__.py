"""The web console at /app: server-rendered pages for agents, tenant admins, compliance
officers and a small customer portal, over the same services, permissions and audit as the API."""
