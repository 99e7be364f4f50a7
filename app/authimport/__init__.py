"""Import of a file-based WhatsApp login (a neonize/whatsmeow SQLite store) into whatsmeow's store in Postgres."""
