"""Public-service tasks (线上接单、线下服务): see docs/tasks.md."""
