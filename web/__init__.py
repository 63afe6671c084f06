"""HTTP edge: app factory, settings, authentication, API, pages and the CLI."""
