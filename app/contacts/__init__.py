"""Contacts: which phone numbers have a WhatsApp account, asked of WhatsApp sparingly and remembered."""
