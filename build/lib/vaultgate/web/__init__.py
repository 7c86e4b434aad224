"""The web app: sign-in, the dashboard and its pages, server-rendered with Jinja2."""
