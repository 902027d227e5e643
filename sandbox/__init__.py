"""Control plane of the data sandbox: catalogue, applications, agreements, workspaces, audit."""
