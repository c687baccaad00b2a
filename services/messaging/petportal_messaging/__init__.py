"""Pet Portal messaging: one conversation per client and clinic, staff messages and read receipts."""
