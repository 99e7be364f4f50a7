"""HTTP: routes, JSON errors, auth and request logging. Handlers stay thin; the work happens elsewhere."""
