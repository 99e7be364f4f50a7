"""Import of a file-based WhatsApp login (a neonize/whatsmeow SQLite store, or a Baileys login: folder, SQLite table
or session string) into whatsmeow's store in Postgres."""
