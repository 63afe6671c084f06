"""The worker register (实名台账): rural and migrant workers kept by brokers."""
