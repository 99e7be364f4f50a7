"""The WhatsApp session as the web process sees it: states, reconnect policy, lease, supervisor, audit trail."""
