"""The Laowu domain: regions, accounts, brokers, audit, events and notifications.

Imports no web framework; services take a database session and plain values.
"""
