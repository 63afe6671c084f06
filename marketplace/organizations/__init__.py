"""Employers and HR agencies: registration, verification, members, authorisations."""
