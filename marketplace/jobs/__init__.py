"""Jobs: posting, lawful-posting flags, review and the job life cycle."""
