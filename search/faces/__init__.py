"""Faces: the command line, the MCP server, the web page, watch, and the printed shapes they
share; each is thin over `search.api.Library`."""
