"""Pet Portal gateway: verifies tokens, routes by path prefix to the services, composes the home screen."""
