"""OTP-style supervision for trio: child specs, bounded mailboxes, restarts."""
