"""The tape: GradientTape, what it records, and the reverse sweep over its entries."""
