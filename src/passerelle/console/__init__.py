"""The admin console at /console: server-rendered HTML pages over the admin operations."""
