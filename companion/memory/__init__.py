"""The conversation store and the memory of the user."""
